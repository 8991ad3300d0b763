"""What a burst worker (`burst=True`, `backburner worker --burst`, `testing.drain`) runs, the
same on every store: every job that is due, retries and delayed jobs that fall due while it
still runs others included; it returns once nothing is due and nothing runs, and a job
scheduled for later (a retry's backoff, `delay=`) stays `scheduled` for the next worker.
It never waits for the clock: a burst worker in a cron job or a CI step must not sleep
through an hour's backoff."""

from __future__ import annotations

import asyncio
import time

from backburner import Backburner, Backoff, JobContext, JobState

NO_WAIT = Backoff(base=0, jitter=0)


async def burst(app: Backburner) -> None:
    await asyncio.wait_for(app.run_worker(burst=True, concurrency=4), 30)


async def test_a_retry_due_at_once_runs_in_the_same_burst(app: Backburner) -> None:
    @app.task(retries=2, backoff=NO_WAIT)
    async def flaky(ctx: JobContext) -> int:
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return ctx.attempt

    job = await flaky.enqueue()
    await burst(app)
    record = await job.info()
    assert record.state is JobState.COMPLETED and record.attempt == 3


async def test_jobs_scheduled_for_later_stay_scheduled(app: Backburner) -> None:
    @app.task(retries=1, backoff=Backoff(base=3600, jitter=0))
    async def fails_once(ctx: JobContext) -> None:
        if ctx.attempt == 1:
            raise RuntimeError("later")

    @app.task
    async def ready() -> str:
        return "done"

    retried = await fails_once.enqueue()
    delayed = await ready.options(delay=3600).enqueue()
    now = await ready.enqueue()
    await burst(app)
    assert (await now.info()).state is JobState.COMPLETED
    for job in (retried, delayed):
        record = await job.info()
        assert record.state is JobState.SCHEDULED, record
        assert record.run_at.timestamp() > time.time() + 3000
    assert (await retried.info()).failures == 1


async def test_a_retry_that_falls_due_while_others_run_is_run(app: Backburner) -> None:
    backoff = Backoff(base=0.2, jitter=0)

    @app.task(retries=1, backoff=backoff)
    async def fails_once(ctx: JobContext) -> str:
        if ctx.attempt == 1:
            raise RuntimeError("again soon")
        return "second attempt"

    first = await fails_once.enqueue()

    @app.task
    async def slow() -> None:
        # Runs until the other job's retry is due, so the burst still has work then.
        deadline = time.monotonic() + 20
        record = await first.info()
        while time.monotonic() < deadline:
            record = await first.info()
            if record.state is JobState.SCHEDULED and record.run_at.timestamp() < time.time():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the retry never fell due: {record}")

    await slow.enqueue()
    await burst(app)
    record = await first.info()
    assert record.state is JobState.COMPLETED and record.result == "second attempt"
