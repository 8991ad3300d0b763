"""The scheduler: a side task of every worker that enqueues the ticks of the app's periodic
schedules.

Every worker runs one; none is elected. Each tick is enqueued with a unique key made of the
schedule's name and the tick's instant (`Schedule.tick_key`, period scope), so the store
takes it exactly once however many schedulers try it, and a scheduler that dies loses
nothing as long as another lives. Time comes from the store (`Backend.now`): a worker whose
clock is off neither enqueues a tick early nor skips one, and the sleep until the next tick
is measured on the local monotonic clock, which a skew does not affect.

Catch-up: a scheduler that has run a round enqueues every tick since its previous round (a
slow round or a sleep that overran loses none); a scheduler that starts enqueues at most
the latest tick, and only if it is within the schedule's `catch_up` window. A paused
schedule enqueues nothing, and after a resume nothing from before it is caught up.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from backburner.backends.protocol import ScheduleState
from backburner.enqueue import EnqueueOptions, build_job, insert_jobs
from backburner.errors import BackendUnavailableError
from backburner.schedule import MAX_TICKS_PER_ROUND, Schedule
from backburner.unique import UniqueScope

if TYPE_CHECKING:
    from backburner.app import Backburner

log = logging.getLogger("backburner.scheduler")

MAX_SLEEP = 30.0
"""Longest sleep between rounds, so a pause, a resume or a changed clock is seen soon."""
WAKE_LATE = 0.01
"""Seconds past a tick to wake up: a round that starts a hair early finds nothing due."""


def due_ticks(
    schedule: Schedule, now: float, cursor: float | None, state: ScheduleState | None
) -> list[float]:
    """The ticks a scheduler enqueues at `now` (store clock), given the time of its previous
    round (`cursor`, None for the first) and the schedule's stored state."""
    if state is not None and state.paused:
        return []
    oldest = now - schedule.catch_up
    if state is not None:
        oldest = max(oldest, state.changed_at)
    if cursor is None:
        latest = schedule.latest_at(now)
        return [latest] if latest >= oldest else []
    start = max(cursor, oldest - 1e-6)
    return list(itertools.islice(schedule.ticks(start, now), MAX_TICKS_PER_ROUND))


class Scheduler:
    def __init__(self, app: Backburner, schedules: Sequence[Schedule]) -> None:
        self.app = app
        self.schedules = list(schedules)
        self._cursors: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            try:
                wait = await self.round()
            except BackendUnavailableError as exc:
                log.warning("scheduler round failed, will retry: %s", exc)
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.0) + WAKE_LATE, MAX_SLEEP))

    async def round(self) -> float:
        """Enqueue what is due; return seconds until the next tick of any schedule."""
        backend = self.app.backend
        states = await backend.schedule_states()
        now = await backend.now()
        started = time.monotonic()
        for schedule in self.schedules:
            state = states.get(schedule.name)
            ticks = due_ticks(schedule, now, self._cursors.get(schedule.name), state)
            if ticks:
                await self.enqueue_ticks(schedule, ticks)
            self._cursors[schedule.name] = now
        # The store's clock now, without asking again: the monotonic clock measured the
        # round, and a skew of the wall clock cannot change that.
        after = now + (time.monotonic() - started)
        return min(s.next_after(after) for s in self.schedules) - after

    async def enqueue_ticks(self, schedule: Schedule, ticks: Sequence[float]) -> None:
        task = schedule.task
        jobs = [
            build_job(
                task,
                # The tick's own key: the store takes each tick once, whoever enqueues it.
                EnqueueOptions(
                    unique_key=schedule.tick_key(tick), unique_scope=UniqueScope.PERIOD,
                    unique_for=schedule.key_for,
                ),
                schedule.args, schedule.kwargs,
            )
            for tick in ticks
        ]
        handles = await insert_jobs(self.app, jobs, task=task)
        fresh = [h.id for h in handles if not h.duplicate]
        if fresh:
            log.info("schedule %s: enqueued %d tick(s)", schedule.name, len(fresh))

