"""Queue controls: pause and resume a queue for every worker, and what each queue holds.

The store keeps one flag per queue (`Backend.set_queue_paused`), and every claim reads it in
the same atomic step that takes jobs (SQL: a join of the tiny queues table; Redis: a field
the claim script reads), so a pause holds from the next claim of every worker, with no extra
round trip. Jobs enqueued into a paused queue are stored and wait. A resume wakes the
workers through the notifier, as an enqueue does, so they start at once rather than at
their next poll. Jobs already running when a queue is paused run to their end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from backburner.backends.protocol import QueueState
from backburner.job import JobState, timestamp
from backburner.names import MAX_NAME, check_name

if TYPE_CHECKING:
    from backburner.app import Backburner

MAX_QUEUE_NAME = MAX_NAME
"""The longest queue name, as for tasks (`@app.task(queue=...)`)."""


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as `app.queues()` reports it."""

    name: str
    paused: bool
    counts: dict[JobState, int]
    """Jobs per state, every state present (zero included)."""
    changed_at: datetime | None
    """When it was last paused or resumed, by the store's clock (None: never)."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def check_queue_name(name: object) -> str:
    """See `names.check_name`: the same rule for a task's queue, an enqueue's, a pause's and
    a filter's."""
    return check_name("queue name", name)


async def set_paused(app: Backburner, name: str, paused: bool) -> None:
    check_queue_name(name)
    await app.open()
    await app.backend.set_queue_paused(name, paused)
    if not paused:
        # Workers idle on this queue sleep until a wake-up or their poll: wake them now.
        app.instrumentation.wake([name])


async def queue_infos(app: Backburner, only: str | None = None) -> list[QueueInfo]:
    """Every queue that holds jobs or was ever paused or resumed, by name; with `only`, that
    one queue (with zero counts if the store knows nothing of it)."""
    await app.open()
    counts = await app.backend.counts()
    states = await app.backend.queue_states()
    names = {queue for queue, _ in counts} | set(states)
    if only is not None:
        names = {check_queue_name(only)}
    return [_info(name, counts, states.get(name)) for name in sorted(names)]


def _info(
    name: str, counts: Mapping[tuple[str, JobState], int], state: QueueState | None
) -> QueueInfo:
    return QueueInfo(
        name=name,
        paused=state is not None and state.paused,
        counts={s: counts.get((name, s), 0) for s in JobState},
        changed_at=timestamp(state.changed_at) if state is not None else None,
    )
