"""R4: poison jobs that take their worker process down (`os._exit`, `abort`, SIGKILL self).

A supervisor (the test) restarts dead workers and keeps ordinary jobs arriving. After
`max_lost` (default 3) recoveries each poison job is failed with reason `worker_lost`;
other jobs keep flowing meanwhile and none is lost: not even those that happened to share a
worker with a poison job when it struck."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from rel_harness import History, Scenario, check

from backburner import Backburner, FailureReason, JobRecord, JobState

pytestmark = pytest.mark.reliability

LEASE = 1.5
MAX_LOST = 3  # the worker's default
MODES = ("exit", "abort", "sigkill")
NORMAL_JOBS = 300


@dataclass
class PoisonRun:
    poison: list[str]
    normal: list[str]
    records: dict[str, JobRecord | None]
    history: History
    deaths: int


def _run(scenario: Scenario, rng: random.Random, workers: int, concurrency: int) -> PoisonRun:
    def durations(count: int) -> list[tuple[int]]:
        return [(rng.randint(20, 200),) for _ in range(count)]

    async def enqueue_poison(app: Backburner) -> tuple[list[str], list[str]]:
        normal = await app.get_task("rel.work").enqueue_many(durations(20))
        poison = [(await app.get_task("rel.poison").enqueue(mode)).id for mode in MODES]
        return poison, [j.id for j in normal]

    async def enqueue_normal(app: Backburner) -> list[str]:
        return [j.id for j in await app.get_task("rel.work").enqueue_many(durations(10))]

    poison, normal = scenario.with_app(enqueue_poison)
    pool = scenario.pool
    pool.start(workers, concurrency=concurrency, lease=LEASE)
    deaths = 0

    def supervise() -> None:
        """Keep the workers alive, and ordinary jobs arriving, while the poison cycles."""
        nonlocal deaths
        deaths += len(pool.respawn_dead())
        if len(normal) < NORMAL_JOBS:
            normal.extend(scenario.with_app(enqueue_normal))

    def poison_stopped() -> bool:
        placeholders = ",".join("?" * len(poison))
        (row,) = scenario.query(
            f"SELECT count(*) FROM backburner_jobs WHERE id IN ({placeholders}) "
            "AND state IN ('completed', 'failed', 'cancelled')", *poison,
        )
        return bool(row[0] == len(poison))

    scenario.wait_for(poison_stopped, 90, "the poison jobs to be stopped", every=0.25,
                      tick=supervise)
    scenario.wait_all_terminal(60, tick=supervise)
    history = scenario.history()
    return PoisonRun(poison, normal, scenario.records(normal + poison), history, deaths)


def _check_poison(run: PoisonRun, *, alone: bool) -> None:
    for job_id, mode in zip(run.poison, MODES, strict=True):
        rec = run.records[job_id]
        assert rec is not None and rec.state is JobState.FAILED, (mode, rec)
        assert rec.reason is FailureReason.WORKER_LOST, (mode, rec.reason)
        assert rec.lost == MAX_LOST and rec.attempt == MAX_LOST and rec.failures == 0
        assert [(e.attempt, e.reason) for e in rec.errors] == [
            (n, FailureReason.WORKER_LOST) for n in range(1, MAX_LOST + 1)
        ]
        ran = len(run.history.of(job_id))
        # Sharing a worker, a poison job can also be lost to another one's crash.
        assert ran == MAX_LOST if alone else 1 <= ran <= MAX_LOST, (mode, ran)


def _flowed(run: PoisonRun) -> int:
    """Ordinary jobs completed between the first and the last poison attempt."""
    starts = [a.start for j in run.poison for a in run.history.of(j)]
    return sum(
        1 for j in run.normal for a in run.history.of(j)
        if a.outcome == "ok" and a.end is not None and min(starts) < a.end < max(starts)
    )


@pytest.mark.timeout(150)
def test_poison_jobs_are_stopped_and_others_keep_flowing(
    scenario: Scenario, rng: random.Random
) -> None:
    """One job per worker process: every crash is the poison job's own."""
    run = _run(scenario, rng, workers=3, concurrency=1)
    _check_poison(run, alone=True)
    poison_pids = {a.pid for j in run.poison for a in run.history.of(j)}
    verdict = check(run.history, {j: run.records[j] for j in run.normal},
                    died=dict.fromkeys(poison_pids, 0.0))
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.stale_writes == [] and verdict.double_claims == [], verdict.summary()
    # A job that finished just before its worker claimed a poison job can run again: the
    # poison may kill the process before that completion is written (acknowledgements are
    # asynchronous). At-least-once allows it; a rerun nothing explains is not allowed.
    assert verdict.unexplained_reruns == [] and verdict.unexplained_duplicates == [], (
        verdict.summary()
    )
    flowed = _flowed(run)
    assert flowed > 0, "no ordinary job completed while the poison cycled"
    assert run.deaths == len(MODES) * MAX_LOST
    print(f"FIGURES R4a: poison={len(MODES)} ({', '.join(MODES)}) each failed worker_lost "
          f"after exactly {MAX_LOST} runs; worker_deaths={run.deaths} "
          f"normal_jobs={len(run.normal)} completed_while_poison_cycled={flowed} "
          f"{verdict.summary()}")


@pytest.mark.timeout(120)
def test_jobs_sharing_a_worker_with_poison_are_not_failed(scenario: Scenario) -> None:
    """A poison job claimed in one batch with ordinary jobs takes them down with it. Being a
    bystander must not cost a job its life: the ordinary jobs must end `completed`, never
    `failed: worker_lost`. One worker (restarted by the supervisor) with 4 slots, one poison
    job and the 3 jobs enqueued right after it: the batch a fresh worker claims."""

    async def enqueue(app: Backburner) -> tuple[str, list[str]]:
        poison = await app.get_task("rel.poison").enqueue("exit")
        normal = await app.get_task("rel.work").enqueue_many([(50,)] * 3)
        return poison.id, [j.id for j in normal]

    poison, normal = scenario.with_app(enqueue)
    pool = scenario.pool
    pool.start(1, concurrency=4, lease=LEASE)
    deaths = 0

    def supervise() -> None:
        nonlocal deaths
        deaths += len(pool.respawn_dead())

    scenario.wait_all_terminal(60, tick=supervise)
    records = scenario.records([poison, *normal])
    history = scenario.history()
    rec = records[poison]
    assert rec is not None and rec.reason is FailureReason.WORKER_LOST and rec.lost == MAX_LOST
    outcome = {
        j: f"{r.state.value} {r.reason.value if r.reason else ''} lost={r.lost} "
           f"runs={len(history.of(j))}"
        for j in normal if (r := records[j]) is not None
    }
    failed = {j: o for j, o in outcome.items() if not o.startswith("completed")}
    print(f"FIGURES R4b: poison=1 bystanders={len(normal)} bystanders_failed={len(failed)} "
          f"worker_deaths={deaths} outcomes={sorted(outcome.values())}")
    assert failed == {}, f"ordinary jobs killed by a neighbouring poison job were failed: {failed}"
