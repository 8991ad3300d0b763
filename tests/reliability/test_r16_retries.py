"""R16: retries and backoff, run by real worker processes.

attempts == max attempts exactly; the delay before retry n lies within the documented jitter
(`Backoff`: nominal * uniform[1 - jitter, 1 + jitter]) plus a small scheduling tolerance; a
retry scheduled when every worker is SIGKILLed still runs, not early, not lost; the error of
every attempt is kept."""

from __future__ import annotations

import pytest
from rel_app import FLAKY_BACKOFF, SLOW_BACKOFF
from rel_harness import Scenario, check

from backburner import Backburner, Backoff, FailureReason, JobRecord, JobState

pytestmark = pytest.mark.reliability

LEASE = 2.0
# From the failure being recorded to the retry's first line: claim wake-up and task start.
LATE_TOLERANCE = 0.75
EARLY_TOLERANCE = 0.01  # clock resolution only: a retry must never start early
LATER = 5.0  # RetryLater(delay) of the kill test; long enough to restart a worker in


def _delay_bounds(backoff: Backoff, retry: int) -> tuple[float, float]:
    nominal = backoff.nominal(retry)
    return (nominal * (1 - backoff.jitter) - EARLY_TOLERANCE,
            nominal * (1 + backoff.jitter) + LATE_TOLERANCE)


def _retry_delays(rec: JobRecord, starts: dict[int, float]) -> list[float]:
    """Seconds from each recorded failure to the start of the attempt after it."""
    return [
        starts[error.attempt + 1] - error.at.timestamp()
        for error in rec.errors
        if error.attempt + 1 in starts
    ]


def test_attempts_backoff_and_errors_follow_the_policy(scenario: Scenario) -> None:
    async def enqueue(app: Backburner) -> tuple[list[str], str, str]:
        flaky = app.get_task("rel.flaky")
        always = [j.id for j in await flaky.enqueue_many([(99,)] * 4)]
        fewer = (await flaky.options(retries=1).enqueue(99)).id
        recovers = (await flaky.enqueue(2)).id
        return always, fewer, recovers

    always, fewer, recovers = scenario.with_app(enqueue)
    scenario.pool.start(2, concurrency=4, lease=LEASE)
    scenario.wait_all_terminal(40)
    records = scenario.records([*always, fewer, recovers])
    history = scenario.history()

    delays: list[tuple[int, float]] = []
    for job_id, max_attempts, fail_until in (
        *((j, 4, 99) for j in always), (fewer, 2, 99), (recovers, 4, 2)
    ):
        rec = records[job_id]
        assert rec is not None
        attempts = history.of(job_id)
        ran = min(max_attempts, fail_until + 1)
        assert [a.attempt for a in attempts] == list(range(1, ran + 1)), (job_id, attempts)
        assert rec.attempt == ran and rec.max_attempts == max_attempts and rec.lost == 0
        failed = min(fail_until, max_attempts)
        assert rec.failures == failed
        # Every failed attempt's error is kept, in order, with its traceback.
        assert [e.attempt for e in rec.errors] == list(range(1, failed + 1))
        for error in rec.errors:
            assert error.type == "ValueError" and error.reason is FailureReason.ERROR
            assert f"attempt {error.attempt} of {job_id} failed" in error.message
            assert error.traceback and "ValueError" in error.traceback
        if fail_until >= max_attempts:
            assert rec.state is JobState.FAILED and rec.reason is FailureReason.ERROR
        else:
            assert rec.state is JobState.COMPLETED and rec.result["attempt"] == ran
        starts = {a.attempt: a.start_wall for a in attempts}
        for retry, delay in enumerate(_retry_delays(rec, starts), start=1):
            low, high = _delay_bounds(FLAKY_BACKOFF, retry)
            assert low <= delay <= high, (job_id, retry, delay, (low, high))
            delays.append((retry, delay))

    verdict = check(history, records, died={}, expect_completed=False)
    assert verdict.overlaps == [] and verdict.double_claims == [], verdict.summary()
    assert len(delays) == 4 * 3 + 1 + 2
    by_retry = {
        n: [round(d, 3) for r, d in delays if r == n] for n in sorted({r for r, _ in delays})
    }
    print(f"FIGURES R16a: jobs=6 attempts_exact=yes delays_by_retry={by_retry} "
          f"nominal={[FLAKY_BACKOFF.nominal(n) for n in (1, 2, 3)]} "
          f"jitter={FLAKY_BACKOFF.jitter}")


def test_a_scheduled_retry_survives_a_worker_kill(scenario: Scenario) -> None:
    async def enqueue(app: Backburner) -> tuple[str, str]:
        backoff = (await app.get_task("rel.flaky_slow").enqueue(1)).id
        later = (await app.get_task("rel.later").enqueue(LATER)).id
        return backoff, later

    backoff_id, later_id = scenario.with_app(enqueue)
    (worker,) = scenario.pool.start(1, concurrency=4, lease=LEASE)

    def both_scheduled() -> bool:
        rows = scenario.query("SELECT state FROM backburner_jobs")
        return len(rows) == 2 and all(r[0] == "scheduled" for r in rows)

    scenario.wait_for(both_scheduled, 20, "both jobs to wait for their retry", every=0.02)
    scenario.pool.kill(worker)
    killed_at = scenario.pool.killed[worker.pid]
    assert both_scheduled(), "the kill must land while the retries wait"
    scenario.pool.start(1, concurrency=4, lease=LEASE)
    scenario.wait_all_terminal(30)

    records = scenario.records([backoff_id, later_id])
    history = scenario.history()
    verdict = check(history, records, died=scenario.pool.killed)
    assert verdict.lost == [] and verdict.stale_writes == [], verdict.summary()
    figures = []
    for job_id, reason, low, high in (
        (backoff_id, FailureReason.ERROR, *_delay_bounds(SLOW_BACKOFF, 1)),
        (later_id, FailureReason.RETRY_REQUESTED, LATER - EARLY_TOLERANCE,
         LATER + LATE_TOLERANCE),
    ):
        rec = records[job_id]
        assert rec is not None and rec.state is JobState.COMPLETED, rec
        first, second = history.of(job_id)
        assert first.pid == worker.pid and second.pid != worker.pid
        assert second.start > killed_at, "the retry ran after the kill, on the new worker"
        # Nothing was running at the kill: not lost, nothing counted against the job.
        assert rec.attempt == 2 and rec.failures == 1 and rec.lost == 0
        assert [(e.attempt, e.reason) for e in rec.errors] == [(1, reason)]
        (delay,) = _retry_delays(rec, {2: second.start_wall})
        assert low <= delay <= high, (job_id, delay, (low, high))
        figures.append(f"{reason.value}:{delay:.2f}s in [{low:.2f},{high:.2f}]")
    print(f"FIGURES R16b: scheduled retries survived kill -9: {' '.join(figures)}")
