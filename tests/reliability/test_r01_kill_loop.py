"""R1 at CI size: 4 worker processes work through 3,000 jobs while a random one is SIGKILLed
about every second (10 kills), each replaced at once by a new process.

lost = 0; every job completed at least once; duplicates only from attempts that ran on a
killed worker; no two attempts of a job ever ran at once (overlap = 0); every job a kill
interrupted runs again within lease + 5 s of the kill (the test reports the last one): a
correctness bound on rescue, not a speed benchmark. Rescued jobs used to re-run one per poll
interval on each idle worker, the last ones tens of seconds after the kill."""

from __future__ import annotations

import random
import time

import pytest
from conftest import ALL_KINDS
from rel_harness import Scenario, check

from backburner import Backburner

pytestmark = pytest.mark.reliability

JOBS = 3000
WORKERS = 4
CONCURRENCY = 8
LEASE = 2.0
KILLS = 10
RERUN_BOUND = LEASE + 5.0
# The 5 s cover the sweep (every lease / 2), a dead leader's place being taken (a second after
# its lease) and what comes after the rescue: a rescued job is a suspect and waits for a
# worker that runs nothing else (poison isolation: busy workers pause claiming until their
# running jobs end), on 2 cores that also start a replacement worker process every second.
# A job can be caught by several kills; this scenario is about recovery, not the poison limit.
MAX_LOST = KILLS + 1


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_sigkill_loop_loses_nothing(scenario: Scenario, rng: random.Random) -> None:
    durations = [rng.randint(50, 250) for _ in range(JOBS)]

    async def enqueue(app: Backburner) -> list[str]:
        work = app.get_task("rel.work")
        ids: list[str] = []
        for start in range(0, JOBS, 500):
            jobs = await work.enqueue_many([(ms,) for ms in durations[start:start + 500]])
            ids += [j.id for j in jobs]
        return ids

    ids = scenario.with_app(enqueue)
    pool = scenario.pool
    pool.start(WORKERS, concurrency=CONCURRENCY, lease=LEASE, max_lost=MAX_LOST)
    scenario.wait_for(lambda: scenario.history().starts >= 100, 30, "work to be under way")

    started = time.monotonic()
    victims: list[int] = []
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.7, 1.3))
        victim = rng.choice(pool.alive())
        pool.kill(victim)
        victims.append(victim.pid)
        pool.start(1, **victim.options)
    kills_took = time.monotonic() - started
    scenario.wait_all_terminal(120)
    drained = time.monotonic() - started
    codes = pool.stop_all()

    records = scenario.records(ids)
    history = scenario.history()
    verdict = check(history, records, died=pool.killed)
    survivors = {pid: code for pid, code in codes.items() if pid not in pool.killed}
    assert set(survivors.values()) == {0}, pool.logs()[-5000:]
    summary = f"{verdict.summary()} (seed {scenario.seed})"
    assert verdict.lost == [], summary
    assert verdict.never_ran == [], summary
    assert verdict.overlaps == [], verdict.overlaps
    assert verdict.double_claims == [], verdict.double_claims
    assert verdict.stale_writes == [], verdict.stale_writes
    assert verdict.unexplained_duplicates == [], verdict.unexplained_duplicates
    assert verdict.unexplained_reruns == [], verdict.unexplained_reruns
    # Every attempt but the one that completed the job ran on a worker the test killed.
    superseded = [
        (j, a.attempt) for j, rec in records.items() if rec is not None
        for a in history.of(j) if a.attempt != rec.attempt and a.pid not in pool.killed
    ]
    assert superseded == [], superseded
    assert all(r is not None and r.failures == 0 for r in records.values())
    lost_counts = [r.lost for r in records.values() if r is not None]

    interrupted = {a.pid for j in ids for a in history.of(j) if a.end is None}
    assert len(interrupted & set(victims)) >= KILLS // 2, "the kills hit too few busy workers"
    # The last rescued job: the longest from its worker's death to its next start.
    last_restart = verdict.max_rerun_delay
    assert last_restart is not None and last_restart <= RERUN_BOUND, (
        f"the last rescued job restarted {last_restart}s after its worker died "
        f"(bound lease + 5 s = {RERUN_BOUND}s; seed {scenario.seed})"
    )
    if scenario.kind == "sqlite":
        (integrity,) = scenario.query("PRAGMA integrity_check")
        assert integrity == ("ok",)
    print(f"FIGURES R1 {scenario.kind}: jobs={JOBS} workers={WORKERS}x{CONCURRENCY} lease={LEASE}s "
          f"kills={KILLS} in {kills_took:.1f}s kills_hitting_running_jobs="
          f"{len(interrupted & set(victims))} attempts_interrupted={len(verdict.rerun_delays)} "
          f"jobs_lost_to_a_kill={sum(1 for n in lost_counts if n)} max_losses_of_one_job="
          f"{max(lost_counts)} drained_after={drained:.1f}s "
          f"last_rescued_restart_after_death={last_restart:.2f}s "
          f"bound=lease+5s={RERUN_BOUND:.1f}s {summary}")
