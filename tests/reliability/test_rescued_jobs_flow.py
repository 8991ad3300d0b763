"""D4 of "Reliability defects found from outside", with real worker processes on every
store: a dead worker's jobs were re-run one per poll interval, even on an idle worker (10
re-runs of 10 ms jobs took 18 s). A rescued job is a suspect and is claimed alone; the claim
then said nothing else was waiting, the loop slept until the next poll, and the end of the
job did not wake it.

Worker A (the housekeeping leader, started first) holds 10 long jobs and is SIGKILLed; worker
B, idle, must take over the lead and restart all 10 (10 ms each on later attempts) within
lease + 5 s of the kill: a correctness bound on rescue (lease expiry, takeover of a dead
leader's place, the sweep, and one short run after another), not a speed benchmark."""

from __future__ import annotations

import pytest
from conftest import ALL_KINDS
from rel_harness import Scenario, check

from backburner import Backburner, JobState

pytestmark = pytest.mark.reliability

LEASE = 2.0
JOBS = 10
POLL = 2.0  # the app default: the pace at which rescued jobs used to re-run
BOUND = LEASE + 5.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_a_dead_workers_jobs_all_restart_within_lease_plus_a_few_seconds(
    scenario: Scenario,
) -> None:
    async def enqueue_long(app: Backburner) -> list[str]:
        jobs = await app.get_task("rel.nap").enqueue_many([(60.0, 0.01)] * JOBS)
        return [j.id for j in jobs]

    async def enqueue_probe(app: Backburner) -> str:
        return (await app.get_task("rel.nap").enqueue(0.01, 0.01)).id

    ids = scenario.with_app(enqueue_long)
    pool = scenario.pool
    options = {"concurrency": JOBS, "lease": LEASE, "poll_interval": POLL}
    (leader,) = pool.start(1, **options)
    scenario.wait_for(lambda: scenario.history().starts >= JOBS, 30, "A to run every job")
    (idle,) = pool.start(1, **options)
    # B is up (and listening) once it ran a job of its own: A has no free slot.
    probe = scenario.with_app(enqueue_probe)
    scenario.wait_for(lambda: scenario.record(probe).state is JobState.COMPLETED, 30,
                      "B to run a job")
    pool.kill(leader)
    scenario.wait_all_terminal(60)
    codes = pool.stop_all()
    assert codes[idle.pid] == 0, pool.logs()[-3000:]

    records = scenario.records(ids)
    history = scenario.history()
    verdict = check(history, records, died=pool.killed)
    summary = f"{verdict.summary()} (seed {scenario.seed})"
    assert verdict.lost == [] and verdict.overlaps == [], summary
    assert verdict.double_claims == [] and verdict.unexplained_reruns == [], summary
    assert len(verdict.rerun_delays) == JOBS, summary
    assert {a.pid for j in ids for a in history.of(j)[1:]} == {idle.pid}
    last = max(verdict.rerun_delays)
    first = min(verdict.rerun_delays)
    print(f"FIGURES rescue flow {scenario.kind}: lease={LEASE}s poll={POLL}s jobs={JOBS} "
          f"first_restart_after_kill={first:.2f}s last_restart_after_kill={last:.2f}s "
          f"bound={BOUND:.1f}s {summary}")
    assert last <= BOUND, (f"the last of {JOBS} rescued jobs restarted {last:.2f}s after its "
                           f"worker died (bound lease + 5 s = {BOUND:.1f}s)")
