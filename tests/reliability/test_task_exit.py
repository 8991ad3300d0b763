"""D3 of "Reliability defects found from outside", with real worker processes on every
store: `SystemExit` raised inside a task (async or sync) ended the whole worker process (exit
code 3); the job was then taken for one that kills its worker and ended `worker_lost` after
3 deaths, with no trace of the `SystemExit`.

Now it is that job's failure, recorded and counted against its retries, and the worker goes
on: the same process completes the ordinary jobs around it and exits 0 when stopped."""

from __future__ import annotations

import asyncio

import pytest
import rd_app
from conftest import ALL_KINDS
from rel_harness import Scenario

from backburner import FailureReason, JobRecord, JobState

pytestmark = pytest.mark.reliability

LEASE = 2.0
NORMAL = 20


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_systemexit_in_a_task_fails_the_job_and_the_worker_goes_on(scenario: Scenario) -> None:
    async def enqueue() -> tuple[list[str], list[str]]:
        async with rd_app.build_app(scenario.url) as app:
            quits = [(await app.get_task(name).enqueue(3)).id
                     for name in ("rd.quit", "rd.quit_sync")]
            work = await app.get_task("rel.work").enqueue_many([(20,)] * NORMAL)
            return quits, [j.id for j in work]

    quits, normal = asyncio.run(enqueue())
    pool = scenario.pool
    (worker,) = pool.start(1, app="rd_app:app", concurrency=4, lease=LEASE)
    # Before the fix the worker died on the first SystemExit and nothing took the jobs back:
    # they never ended (and, restarted, ended worker_lost).
    scenario.wait_all_terminal(60)
    assert worker.alive(), pool.logs()[-3000:]
    records = scenario.records(quits + normal)
    history = scenario.history()
    codes = pool.stop_all()
    assert codes == {worker.pid: 0}, pool.logs()[-3000:]

    for job_id in quits:
        rec: JobRecord | None = records[job_id]
        assert rec is not None and rec.state is JobState.FAILED, rec
        assert rec.reason is FailureReason.ERROR and rec.lost == 0, rec
        runs = 1 + rd_app.QUIT_RETRIES
        assert rec.attempt == rec.failures == runs, rec
        assert [e.type for e in rec.errors] == ["SystemExit"] * runs
        assert [a.outcome for a in history.of(job_id)] == ["error:SystemExit"] * runs
        assert {a.pid for a in history.of(job_id)} == {worker.pid}
    done = [j for j in normal if (r := records[j]) is not None and r.state is JobState.COMPLETED]
    assert len(done) == NORMAL
    assert {a.pid for j in normal for a in history.of(j)} == {worker.pid}
    print(f"FIGURES task exit {scenario.kind}: SystemExit jobs failed with their error "
          f"(async and sync, {1 + rd_app.QUIT_RETRIES} attempts each), normal={NORMAL} "
          f"completed on the same worker, exit code 0")
