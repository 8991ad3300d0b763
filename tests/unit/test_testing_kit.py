from __future__ import annotations

from backburner import Backburner, Backoff, JobState
from backburner.testing import ManualClock, drain, memory_backend


async def test_drain_runs_retries_and_delays_without_sleeping() -> None:
    clock = ManualClock()
    app = Backburner(backend=memory_backend(clock))
    calls: list[float] = []

    @app.task(retries=3, backoff=Backoff(base=60, jitter=0))
    async def flaky() -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "ok"

    @app.task
    async def later() -> None: ...

    job = await flaky.enqueue()
    delayed = await later.options(delay=3600).enqueue()
    start = clock.now
    assert await drain(app, run_scheduled=True) == 4
    assert await job.result(timeout=1) == "ok"
    assert [round(c - start) for c in calls] == [0, 60, 180]
    assert (await delayed.info()).state is JobState.COMPLETED
