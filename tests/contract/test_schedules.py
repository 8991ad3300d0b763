"""Periodic schedules on every backend: each tick enqueued once however many schedulers
run, pause/resume/trigger through the store, and a worker that runs its schedules."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import datetime, timedelta

import pytest

from backburner import Backburner, JobState
from backburner.backends.protocol import Backend
from backburner.scheduler import Scheduler


def tick_of(key: str | None) -> float:
    assert key is not None and key.startswith("periodic:")
    return datetime.fromisoformat(key.split("@", 1)[1]).timestamp()


async def periodic_jobs(app: Backburner, task: str) -> list[str | None]:
    return [j.unique_key for j in (await app.list_jobs(task=task, limit=1000)).jobs]


async def test_schedule_state_is_kept_by_the_store(backend: Backend) -> None:
    before = await backend.now()
    assert await backend.schedule_states() == {}
    await backend.set_schedule_paused("nightly", True)
    states = await backend.schedule_states()
    assert states["nightly"].paused and states["nightly"].changed_at >= before - 1
    await backend.set_schedule_paused("nightly", False)
    assert not (await backend.schedule_states())["nightly"].paused


async def test_three_schedulers_enqueue_each_tick_once(app: Backburner) -> None:
    @app.periodic(every=timedelta(seconds=1))
    @app.task
    async def beat() -> None: ...

    schedulers = [Scheduler(app, list(app.periodic_schedules.values())) for _ in range(3)]
    runs = [asyncio.create_task(s.run()) for s in schedulers]
    try:
        await asyncio.sleep(3.2)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
    keys = await periodic_jobs(app, beat.name)
    assert max(Counter(keys).values()) == 1  # never doubled
    ticks = sorted(tick_of(k) for k in keys)
    assert len(ticks) >= 3
    assert ticks == [ticks[0] + i for i in range(len(ticks))]  # none missed


async def test_pause_resume_trigger_and_listing(app: Backburner) -> None:
    @app.periodic(cron="0 9 * * *", tz="Europe/Paris", name="morning")
    @app.task
    async def report(day: str = "today") -> str:
        return day

    [info] = await app.schedules(runs=3)
    assert info.name == "morning" and info.task == report.name and not info.paused
    assert info.description == "At 09:00 every day (Europe/Paris)"
    assert [d.hour for d in info.next_runs] == [9, 9, 9]
    await app.pause_schedule("morning")
    assert (await app.schedules())[0].paused
    job = await app.trigger_schedule("morning")  # runs now, paused or not
    assert job.initial_state is JobState.PENDING
    await app.resume_schedule("morning")
    assert not (await app.schedules())[0].paused


class SteppedStoreClock:
    """The store's clock, as the scheduler reads it (`Backend.now`), moved by the test: the
    scheduler takes its time from the store alone, so a round can be run "a second later"
    without waiting a second. It starts a minute ahead of the real clock, so no stall of
    the test puts the store's own timestamps (a resume's, on most stores) in its future, and
    half a second past a whole second: with `every=1` each step passes exactly one tick."""

    def __init__(self, real_now: float) -> None:
        self.now = math.ceil(real_now) + 60.5

    async def __call__(self) -> float:
        return self.now


async def test_a_paused_schedule_enqueues_nothing(
    app: Backburner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same scheduler rounds, one store-clock second apart, on a paused schedule and on
    its unpaused twin: the twin enqueues the latest tick on the first round and one tick on
    each later round, the paused one nothing; resumed, it enqueues the ticks from then on,
    none from while it was paused. Without the pause check, `tick` would have the twin's
    ticks; with a scheduler that enqueued nothing at all, the twin would have none."""
    @app.periodic(every=1)
    @app.task
    async def tick() -> None: ...

    @app.periodic(every=1)
    @app.task
    async def twin() -> None: ...

    clock = SteppedStoreClock(await app.backend.now())
    monkeypatch.setattr(app.backend, "now", clock)
    first = math.floor(clock.now)
    await app.pause_schedule(tick.name)
    scheduler = Scheduler(app, list(app.periodic_schedules.values()))

    async def later_rounds(count: int) -> None:
        for _ in range(count):
            clock.now += 1.0
            await scheduler.round()

    await scheduler.round()
    await later_rounds(2)
    assert await periodic_jobs(app, tick.name) == []
    assert sorted(map(tick_of, await periodic_jobs(app, twin.name))) == [
        first, first + 1, first + 2]

    # Resumed at the last round's reading (Redis stamps the resume with `now`; the other
    # stores with their real clock, which is behind it): the ticks after it are due.
    await app.resume_schedule(tick.name)
    await later_rounds(2)
    assert sorted(map(tick_of, await periodic_jobs(app, tick.name))) == [first + 3, first + 4]
    assert len(await periodic_jobs(app, twin.name)) == 5


async def test_a_worker_runs_its_schedules(app: Backburner) -> None:
    done = asyncio.Event()

    @app.periodic(every=1)
    @app.task
    async def heartbeat() -> None:
        done.set()

    worker = app.worker(handle_signals=False, poll_interval=0.2)
    run = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        worker.stop()
        await asyncio.wait_for(run, 30)
    assert await periodic_jobs(app, heartbeat.name)
