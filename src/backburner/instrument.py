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


class Instrumentation:
    def __init__(self, notifier_of: Callable[[], Notifier]) -> None:
        self._notifier_of = notifier_of
        self.observers: list[Observer] = []
        self.meter: Meter | None = None
        """The app's metrics once something asked for them (`JobMetrics.of`): one per app,
        so an embedded worker and the web process's /metrics share one registry."""

    @property
    def notifier(self) -> Notifier:
        """The running event loop's (each loop has its own connections)."""
        return self._notifier_of()

    def changed(self, changes: Iterable[Change]) -> None:
        changes = list(changes)
        if not changes:
            return
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
        self.notifier.publish(
            [
                Event("job", c.queue, c.job_id, c.task, c.state, c.attempt, c.progress)
                for c in changes
            ]
        )

    def enqueued(self, queues: Iterable[str], changes: Iterable[Change]) -> None:
        self.notifier.publish([Event("wakeup", q) for q in set(queues)])
        self.changed(changes)

    def wake(self, queues: Iterable[str]) -> None:
        self.notifier.publish([Event("wakeup", q) for q in set(queues)])

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
