"""Periodic schedules on every backend: each tick enqueued once however many schedulers
run, pause/resume/trigger through the store, and a worker that runs its schedules."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

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


async def test_a_paused_schedule_enqueues_nothing(app: Backburner) -> None:
    @app.periodic(every=1)
    @app.task
    async def tick() -> None: ...

    await app.pause_schedule(tick.name)
    scheduler = Scheduler(app, list(app.periodic_schedules.values()))
    for _ in range(2):
        await scheduler.round()
        await asyncio.sleep(0.6)
    await scheduler.round()
    assert await periodic_jobs(app, tick.name) == []


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
