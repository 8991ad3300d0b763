"""R2: SIGTERM while 8 jobs run, some shorter and some longer than the grace period.

Short ones finish with no duplicate; long ones are released at the deadline and run again
once, at once (without waiting for their lease to expire); the process exits within
grace + 5 s."""

from __future__ import annotations

import signal
import time

import pytest
from rel_harness import Scenario, check

from backburner import Backburner, JobState

pytestmark = pytest.mark.reliability

GRACE = 3.0
LEASE = 30.0  # long on purpose: a re-run that waited for lease expiry would be obvious


def test_sigterm_finishes_short_jobs_and_releases_long_ones(scenario: Scenario) -> None:
    async def enqueue(app: Backburner) -> tuple[list[str], list[str]]:
        nap, nap_sync = app.get_task("rel.nap"), app.get_task("rel.nap_sync")
        short = [
            (await nap.enqueue(first, 0.1)).id for first in (0.5, 1.0, 2.0)
        ] + [(await nap_sync.enqueue(1.5, 0.1)).id]
        long = [
            (await nap.enqueue(first, 0.2)).id for first in (30.0, 60.0, 600.0)
        ] + [(await nap_sync.enqueue(30.0, 0.2)).id]
        return short, long

    short, long = scenario.with_app(enqueue)
    (worker,) = scenario.pool.start(1, concurrency=8, lease=LEASE, grace=GRACE)
    scenario.wait_for(lambda: scenario.history().starts == 8, 20, "all 8 jobs to start")

    term_at = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    code = worker.popen.wait(GRACE + 15)
    exited_at = time.monotonic()
    exited_after = exited_at - term_at

    after_first = scenario.records(short + long)
    for job_id in short:
        rec = after_first[job_id]
        assert rec is not None and rec.state is JobState.COMPLETED, rec
    for job_id in long:
        rec = after_first[job_id]
        assert rec is not None
        # Released, not abandoned: claimable now, no lease left, not counted as lost.
        assert rec.state is JobState.PENDING, rec
        assert rec.lease_until is None and rec.worker_id is None
        assert rec.lost == 0 and rec.failures == 0 and not rec.errors

    # Async long jobs are cancelled at the deadline; the sync one's thread cannot be
    # interrupted (it dies with the process) but its job is released all the same.
    history = scenario.history()
    first_attempts = [history.of(j)[0] for j in long[:3]]
    assert [a.outcome for a in first_attempts] == ["cancelled"] * 3, first_attempts
    release_delays = [a.end - term_at for a in first_attempts if a.end is not None]

    rerun_started = time.monotonic()
    scenario.pool.start(1, concurrency=8, lease=LEASE, grace=GRACE, burst=True)
    scenario.wait_all_terminal(LEASE / 2)
    records = scenario.records(short + long)
    history = scenario.history()
    verdict = check(history, records, died={worker.pid: exited_at})

    assert verdict.lost == [] and verdict.stale_writes == [] and verdict.double_claims == []
    assert verdict.overlaps == [] and verdict.unexplained_reruns == [], verdict.summary()
    for job_id in short:
        attempts = history.of(job_id)
        assert [a.outcome for a in attempts] == ["ok"], (job_id, attempts)
    rerun_waits = []
    for job_id in long:
        attempts = history.of(job_id)
        assert len(attempts) == 2, (job_id, attempts)
        rec = records[job_id]
        assert rec is not None and rec.attempt == 2 and rec.lost == 0
        rerun_waits.append(attempts[1].start - rerun_started)

    assert code == 0, scenario.pool.logs()
    assert exited_after <= GRACE + 5, f"exited {exited_after:.1f}s after SIGTERM"
    assert all(GRACE - 0.5 <= d <= GRACE + 2 for d in release_delays), release_delays
    assert max(rerun_waits) < LEASE / 3, rerun_waits
    print(f"FIGURES R2: short=4 long=4 short_duplicates={verdict.duplicates} "
          f"exit_after_sigterm={exited_after:.2f}s (grace {GRACE}s) "
          f"release_after_sigterm={max(release_delays):.2f}s "
          f"rerun_after_restart={max(rerun_waits):.2f}s (lease {LEASE}s) {verdict.summary()}")
