"""R3: a zombie worker. SIGSTOP a worker for 2x its lease, then SIGCONT.

Its jobs are re-claimed by another worker while it sleeps; when it wakes, every write it
tries is refused by the fencing token and it abandons its copies. The job records must hold
the newer attempt's result and progress only.

Two jobs run on the zombie: `steps` writes progress every 0.1 s (its writes after the
resume must be refused); `block` holds the zombie's event loop in `time.sleep` across the
pause, so on resume it ends before the zombie can heartbeat, and its completion (or, in the
second run, its retryable failure) is sent, and must be refused, deterministically."""

from __future__ import annotations

import time

import pytest
from conftest import ALL_KINDS
from rel_harness import Scenario, check

from backburner import Backburner, FailureReason, JobState

pytestmark = pytest.mark.reliability

LEASE = 1.5


@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
@pytest.mark.parametrize("zombie_write", ["completion", "failure"])
def test_a_paused_worker_is_fenced_off_when_it_resumes(
    scenario: Scenario, zombie_write: str
) -> None:
    async def enqueue(app: Backburner) -> tuple[str, str]:
        steps = await app.get_task("rel.steps").enqueue(40, 0.1)
        block = await app.get_task("rel.block").enqueue(2.0, 0.05, zombie_write == "failure")
        return steps.id, block.id

    (zombie,) = scenario.pool.start(1, concurrency=4, lease=LEASE)
    steps_id, block_id = scenario.with_app(enqueue)
    scenario.wait_for(lambda: scenario.history().starts == 2, 20, "both jobs to start")
    (healthy,) = scenario.pool.start(1, concurrency=4, lease=LEASE)
    time.sleep(0.2)

    scenario.pool.pause(zombie)
    stopped_at = scenario.pool.stopped[zombie.pid]
    time.sleep(2 * LEASE)
    scenario.wait_for(
        lambda: all(len(scenario.history().of(j)) == 2 for j in (steps_id, block_id)),
        10, "the other worker to re-claim both jobs",
    )
    resumed_at = time.monotonic()
    scenario.pool.resume(zombie)
    scenario.wait_all_terminal(20)
    time.sleep(LEASE)  # a few more zombie heartbeats: it must not crash on its losses

    records = scenario.records([steps_id, block_id])
    history = scenario.history()
    verdict = check(history, records, died={})
    assert verdict.lost == [] and verdict.stale_writes == [], verdict.stale_writes
    assert verdict.double_claims == [] and verdict.never_ran == [], verdict.summary()
    # The only extra execution is the zombie's copy of `block`, whose result was refused.
    expected_duplicates = [(block_id, 1)] if zombie_write == "completion" else []
    assert verdict.unexplained_duplicates == expected_duplicates, verdict.summary()

    for job_id in (steps_id, block_id):
        rec = records[job_id]
        assert rec is not None and rec.state is JobState.COMPLETED, rec
        first, second = history.of(job_id)
        assert first.pid == zombie.pid and second.pid == healthy.pid
        assert stopped_at < second.start < resumed_at, "re-claimed while the zombie slept"
        # The record is the newer attempt's, from result to progress.
        assert rec.attempt == 2 and rec.result == {"attempt": 2, "pid": healthy.pid}
        assert rec.lost == 1 and rec.failures == 0
        assert [(e.attempt, e.reason) for e in rec.errors] == [(1, FailureReason.WORKER_LOST)]

    steps_rec = records[steps_id]
    assert steps_rec is not None and steps_rec.progress is not None
    assert steps_rec.progress.message == f"{healthy.pid}:2"
    zombie_steps, _ = history.of(steps_id)
    late_writes = [w for w in zombie_steps.writes if w.issued > resumed_at]
    assert all(not w.ok for w in late_writes), "a resumed zombie's progress was accepted"
    # The zombie gave up its copy (a refused write, or its heartbeat saw the lease gone).
    assert zombie_steps.outcome in ("lease_lost", "cancelled"), zombie_steps
    assert zombie_steps.end is not None and zombie_steps.end - resumed_at < LEASE

    # Its copy of `block` ended on resume and sent a completion or a failure (which would
    # have scheduled a retry and recorded an error): refused, the record shows neither.
    zombie_block, _ = history.of(block_id)
    expected = "ok" if zombie_write == "completion" else "error:ValueError"
    assert zombie_block.outcome == expected and zombie_block.end is not None
    assert zombie_block.end >= resumed_at
    zombie_log = zombie.log_path.read_text()
    assert f"job {block_id} attempt 1: result discarded" in zombie_log, zombie_log

    assert zombie.alive(), "the zombie must survive being fenced off"
    codes = scenario.pool.stop_all()
    assert set(codes.values()) == {0}, scenario.pool.logs()
    reclaimed = max(history.of(j)[1].start for j in (steps_id, block_id)) - stopped_at
    print(
        f"FIGURES R3: paused={resumed_at - stopped_at:.2f}s (lease {LEASE}s) "
        f"reclaimed_after={reclaimed:.2f}s zombie_progress_writes_after_resume="
        f"{len(late_writes)} accepted={sum(w.ok for w in late_writes)} "
        f"zombie_{zombie_write}_refused=1 steps_copy_ended_by={zombie_steps.outcome} "
        f"after={zombie_steps.end - resumed_at:.3f}s {verdict.summary()}"
    )
