"""The one place where job transitions are observed: structured logs and events.

Everything that changes a job's state reports here once, after the store accepted it; logs,
the events that feed live streams, and (later) metrics and traces all come from this point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from backburner.notify import Event, Notifier

log = logging.getLogger("backburner.jobs")


@dataclass(frozen=True, slots=True)
class Change:
    job_id: str
    task: str
    queue: str
    state: str
    attempt: int
    detail: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    waited: float | None = None
    """On a claim (`running`): seconds the job was ready before it started (started_at -
    run_at, both by the store's clock)."""
    ran: float | None = None
    """On an attempt's outcome: seconds it ran, started to finished."""


Observer = Callable[[list[Change]], None]
"""Told of every batch of accepted changes (metrics); must be quick and must not raise."""


class Meter(Protocol):
    """What a worker measures besides transitions (backburner.metrics.JobMetrics is one);
    each method must be quick and must not raise."""

    def claimed(self, size: int) -> None:
        """A claim round trip returned `size` jobs (0: nothing was ready)."""

    def store_call(self, operation: str, seconds: float) -> None:
        """One round trip of a worker to the store (claim, complete, heartbeat...) took
        `seconds`, answered or failed."""

    def running(self, task: str, queue: str, delta: int) -> None:
        """This process started (+1) or finished (-1) running an attempt of `task`."""


_WAKEUPS_KEPT = 1024
"""Queues whose wake-up event is kept for reuse (an `Event` is immutable); past that many
(queue names made per request, say) the kept ones are dropped and made again."""


class Instrumentation:
    def __init__(self, notifier_of: Callable[[], Notifier]) -> None:
        self._notifier_of = notifier_of
        self.observers: list[Observer] = []
        self.meter: Meter | None = None
        """The app's metrics once something asked for them (`JobMetrics.of`): one per app,
        so an embedded worker and the web process's /metrics share one registry."""
        self._wakeups: dict[str, Event] = {}

    @property
    def notifier(self) -> Notifier:
        """The running event loop's (each loop has its own connections)."""
        return self._notifier_of()

    def wants_changes(self, state: str | None = None) -> bool:
        """Whether a `Change` reported now would reach anything: a log line, an observer,
        or a job event someone may receive. False only when the notifier can tell that no
        one listens (its optional `wants_job_events()`; the SQLite notifier knows its local
        subscribers and the other processes' event sockets; Redis and PostgreSQL publish to
        the store and cannot). Lets a busy worker skip building changes and events nobody
        reads: they cost it several µs a job. Asked per batch, just before reporting it.

        With `state`, for changes to that state only: a notifier whose store publishes
        those events itself (the Redis scripts: `running`, `completed`) needs them only
        for its local subscribers (its optional `wants_job_events_of(state)`)."""
        if self.observers or log.isEnabledFor(logging.INFO):
            return True
        notifier = self._notifier_of()
        # Optional, so notifiers that cannot tell need not implement them.
        if state is not None:
            wants_of = getattr(notifier, "wants_job_events_of", None)
            if wants_of is not None:
                return bool(wants_of(state))
        wants = getattr(notifier, "wants_job_events", None)
        return wants is None or bool(wants())

    def changed(self, changes: Iterable[Change]) -> None:
        self._changed(list(changes), None)

    def _changed(self, changes: list[Change], notifier: Notifier | None) -> None:
        if not changes:
            return
        self._report(changes)
        if notifier is None:
            notifier = self._notifier_of()
        notifier.publish(
            [
                Event("job", c.queue, c.job_id, c.task, c.state, c.attempt, c.progress)
                for c in changes
            ]
        )

    def _report(self, changes: list[Change]) -> None:
        """The log lines and the observers' calls of accepted changes."""
        if log.isEnabledFor(logging.INFO):
            for c in changes:
                if c.progress is not None:
                    continue
                fields = {
                    "job_id": c.job_id, "task": c.task, "queue": c.queue, "state": c.state,
                    "attempt": c.attempt, **(c.detail or {}),
                }
                log.info(
                    "job %s %s %s attempt=%d%s", c.job_id, c.task, c.state, c.attempt,
                    "".join(f" {k}={v}" for k, v in (c.detail or {}).items()),
                    extra={"backburner": fields},
                )
        for observe in self.observers:
            observe(changes)

    def enqueued(self, queues: Iterable[str], changes: Iterable[Change]) -> None:
        """The wake-ups of `queues` and the job events of `changes` go in ONE publish: a
        notifier whose store already announced the insert (RedisNotifier.sent_by_script)
        tells by the job events that the wake-ups were sent too."""
        notifier = self._notifier_of()
        changed = list(changes)
        self._report(changed)
        notifier.publish([
            *(self._wakeup(q) for q in set(queues)),
            *(Event("job", c.queue, c.job_id, c.task, c.state, c.attempt, c.progress)
              for c in changed),
        ])

    def enqueued_one(
        self, notifier: Notifier, job_id: str, task: str, queue: str, state: str
    ) -> None:
        """`enqueued` of one new job, for the running loop's `notifier` when the caller has
        it at hand: the same publishes, log line and observer calls, and a `Change` made
        only when a log line or an observer takes it."""
        if self.observers or log.isEnabledFor(logging.INFO):
            self._report([Change(job_id, task, queue, state, 0)])
        # One publish, as in `enqueued`.
        notifier.publish([self._wakeup(queue), Event("job", queue, job_id, task, state, 0, None)])

    def wake(self, queues: Iterable[str]) -> None:
        self.notifier.publish([self._wakeup(q) for q in set(queues)])

    def _wakeup(self, queue: str) -> Event:
        event = self._wakeups.get(queue)
        if event is None:
            if len(self._wakeups) >= _WAKEUPS_KEPT:
                self._wakeups.clear()
            event = self._wakeups[queue] = Event("wakeup", queue)
        return event

    def claimed(self, size: int) -> None:
        if self.meter is not None:
            self.meter.claimed(size)

    def store_call(self, operation: str, seconds: float) -> None:
        if self.meter is not None:
            self.meter.store_call(operation, seconds)

    def running(self, task: str, queue: str, delta: int) -> None:
        if self.meter is not None:
            self.meter.running(task, queue, delta)

    def cancel_requested(self, job_id: str, queue: str) -> None:
        self.notifier.publish([Event("cancel", queue, job_id)])
