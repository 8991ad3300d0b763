"""Wake-ups and job events, apart from the store.

A `Notifier` tells workers that jobs may be ready (so they never poll while idle) and tells
subscribers (result waiters, SSE/WebSocket streams, the dashboard) how jobs change. Delivery is
best effort by design: a missed wake-up costs one poll interval, and a subscriber whose buffer
overflowed is told so and re-reads the store. The store stays the single source of truth.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

EventKind = Literal["wakeup", "job", "cancel"]
"""wakeup: jobs may be ready in `queue`. job: a job changed (state or progress). cancel:
the worker running `job_id` should stop it."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    queue: str
    job_id: str | None = None
    task: str | None = None
    state: str | None = None
    attempt: int | None = None
    progress: dict[str, Any] | None = None

    def to_json(self) -> list[Any]:
        return [
            self.kind, self.queue, self.job_id, self.task, self.state, self.attempt, self.progress
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Event:
        kind, queue, job_id, task, state, attempt, progress = data
        if kind not in ("wakeup", "job", "cancel"):
            raise ValueError(f"unknown event kind {kind!r}")
        return cls(kind, str(queue), job_id, task, state, attempt, progress)


class Subscription:
    """A bounded mailbox of events. A slow reader never slows publishers: when full, the
    oldest event is dropped and `overflowed` is set so the reader knows to re-read the store."""

    def __init__(
        self,
        owner: LocalNotifier,
        kinds: frozenset[EventKind],
        job_id: str | None,
        maxsize: int,
    ) -> None:
        self._owner = owner
        self.kinds = kinds
        self.job_id = job_id
        self._events: deque[Event] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self.overflowed = False

    def wants(self, event: Event) -> bool:
        return event.kind in self.kinds and (self.job_id is None or event.job_id == self.job_id)

    def _offer(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self.overflowed = True
        self._events.append(event)
        self._ready.set()

    def poke(self) -> None:
        """Wake the reader without an event (used to stop waiting early)."""
        self._ready.set()

    def drain(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        self._ready.clear()
        return events

    async def wait(self, timeout: float | None) -> bool:
        """Wait until an event arrives or `timeout` passes; True if something arrived."""
        if self._events:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._owner._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SentEvents:
    """Job events a store's own statement or script has already sent to other processes in
    this process's name (the Redis scripts, PostgreSQL's insert statements): the publish()
    that follows, once the store answered, delivers them locally only instead of sending
    them a second time. Marked per (job id, attempt) with the states the event may carry; a
    mark lasts until its event is published (one attempt of a job enters a state once, so a
    stale mark hides nothing else)."""

    LIMIT = 10_000
    """Most marks kept; beyond, those whose event never came are dropped (at worst a
    duplicate)."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, int], tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._marks)

    def mark(self, events: Iterable[tuple[str, int, tuple[str, ...]]]) -> None:
        if len(self._marks) > self.LIMIT:
            self._marks.clear()
        for job_id, attempt, states in events:
            self._marks[(job_id, attempt)] = states

    def covers(self, event: Event) -> bool:
        return (event.kind == "job" and event.progress is None and event.job_id is not None
                and event.state in self._marks.get((event.job_id, event.attempt or 0), ()))

    def take(self, event: Event) -> bool:
        """Whether `event` was sent already; its mark is used up."""
        if not self.covers(event):
            return False
        del self._marks[(event.job_id or "", event.attempt or 0)]
        return True

    def clear(self) -> None:
        self._marks.clear()


class Notifier(Protocol):
    async def close(self) -> None: ...

    def publish(self, events: Sequence[Event]) -> None:
        """Deliver to local subscribers now and to other processes best effort. Never blocks."""

    def subscribe(
        self, kinds: Iterable[EventKind], job_id: str | None = None, maxsize: int = 1000
    ) -> Subscription:
        """Must be called from inside the running event loop."""


class LocalNotifier:
    """In-process fan-out; also the base of notifiers that cross process boundaries."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.poke()
        self._subscriptions.clear()

    def publish(self, events: Sequence[Event]) -> None:
        self._deliver_locally(events)

    def subscribe(
        self, kinds: Iterable[EventKind], job_id: str | None = None, maxsize: int = 1000
    ) -> Subscription:
        sub = Subscription(self, frozenset(kinds), job_id, maxsize)
        self._subscriptions.add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def _deliver_locally(self, events: Iterable[Event]) -> None:
        if not self._subscriptions:
            return
        for event in events:
            for sub in self._subscriptions:
                if sub.wants(event):
                    sub._offer(event)

    def _wants_kind(self, kind: EventKind) -> bool:
        return any(kind in sub.kinds for sub in self._subscriptions)
