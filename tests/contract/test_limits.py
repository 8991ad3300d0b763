"""Global limits (backburner.limits) as every backend must enforce them at claim time."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from backburner import codec
from backburner.backends.protocol import Backend, Completion, Failure, NewJob, Release
from backburner.ids import new_job_id
from backburner.job import FailureReason, JobState

ERR = {"type": "ValueError", "message": "boom", "traceback": None}


def new(task: str = "limited", priority: int = 0, **limits: Any) -> NewJob:
    return NewJob(
        id=new_job_id(), task=task, queue="default", priority=priority,
        args=codec.dumps([]), kwargs=codec.dumps({}), max_attempts=3, **limits,
    )


def limited(n: int = 1, **limits: Any) -> list[NewJob]:
    return [new(limit_concurrency=2, **limits) for _ in range(n)]


async def claim_ids(backend: Backend, limit: int = 100, worker: str = "w1") -> list[str]:
    claim = await backend.claim(worker, ["default"], limit, 30)
    return [j.id for j in claim.jobs]


async def test_big_claim_takes_at_most_the_limit_and_the_jobs_behind(backend: Backend) -> None:
    jobs = limited(5)
    free = [new(task="free") for _ in range(3)]
    await backend.insert(jobs + free)
    # The limited jobs come first in the queue; the free ones behind are claimed anyway.
    taken = await claim_ids(backend)
    assert taken[:2] == [jobs[0].id, jobs[1].id]
    assert set(taken[2:]) == {j.id for j in free}
    assert await claim_ids(backend) == []
    waiting = await backend.get(jobs[2].id)
    assert waiting is not None and waiting.state is JobState.PENDING and waiting.attempt == 0
    # A second worker is held to the same limit: it is the store's.
    assert await claim_ids(backend, worker="w2") == []


async def test_claims_of_one_at_a_time_add_up_to_the_limit(backend: Backend) -> None:
    await backend.insert(limited(4))
    assert len(await claim_ids(backend, 1)) == 1
    assert len(await claim_ids(backend, 1, worker="w2")) == 1
    assert await claim_ids(backend, 1, worker="w3") == []


async def test_slot_freed_by_complete_goes_to_the_next_job(backend: Backend) -> None:
    jobs = limited(4)
    await backend.insert(jobs)
    claim = await backend.claim("w1", ["default"], 10, 30)
    assert len(claim.jobs) == 2
    signals = backend.notifier.subscribe(["wakeup"])
    done = claim.jobs[0]
    assert await backend.complete([Completion(done.id, done.attempt, "null")]) == [True]
    # The parked job's workers are woken: no polling needed to see the free slot.
    async with asyncio.timeout(5):
        while not any(e.queue == "default" for e in signals.drain()):
            await signals.wait(5)
    signals.close()
    assert await claim_ids(backend) == [jobs[2].id]
    assert await claim_ids(backend) == []


async def test_slot_freed_by_fail_retry_fail_and_release(backend: Backend) -> None:
    jobs = limited(5)
    await backend.insert(jobs)
    first, second = (await backend.claim("w1", ["default"], 10, 30)).jobs
    # A retry in backoff does not hold its slot.
    retried = Failure(first.id, first.attempt, ERR, FailureReason.ERROR, retry_in=60)
    assert await backend.fail([retried]) == [True]
    assert await claim_ids(backend) == [jobs[2].id]
    ended = Failure(second.id, second.attempt, ERR, FailureReason.ERROR)
    assert await backend.fail([ended]) == [True]
    (third,) = (await backend.claim("w1", ["default"], 10, 30)).jobs
    assert third.id == jobs[3].id
    assert await backend.release([Release(third.id, third.attempt)]) == [True]
    # Released: it and the parked jobs compete again; two slots are free again in total.
    assert len(await claim_ids(backend)) == 1
    assert await claim_ids(backend) == []


async def test_cancel_frees_the_slot_of_a_running_job_not_a_waiting_one(
    backend: Backend,
) -> None:
    jobs = limited(4)
    await backend.insert(jobs)
    running = (await backend.claim("w1", ["default"], 10, 30)).jobs
    # Cancelling a parked job frees nothing.
    assert await backend.cancel(jobs[2].id) is JobState.CANCELLED
    assert await claim_ids(backend) == []
    # A running one is cancelled by its worker (a CANCELLED failure): that frees the slot.
    assert await backend.cancel(running[0].id) is JobState.RUNNING
    stop = Failure(running[0].id, running[0].attempt, ERR, FailureReason.CANCELLED)
    assert await backend.fail([stop]) == [True]
    assert await claim_ids(backend) == [jobs[3].id]


async def test_rescue_returns_the_slot_of_a_dead_worker(backend: Backend) -> None:
    jobs = limited(3)
    await backend.insert(jobs)
    dead = await backend.claim("dead", ["default"], 10, 0.05)
    assert len(dead.jobs) == 2
    await asyncio.sleep(0.2)
    moved = await backend.rescue_expired(max_lost=1)
    assert {t.id for t in moved} == {j.id for j in dead.jobs}
    assert all(t.state is JobState.FAILED for t in moved)
    assert await claim_ids(backend) == [jobs[2].id]


async def test_rescued_job_counts_again_when_claimed(backend: Backend) -> None:
    jobs = limited(3)
    await backend.insert(jobs)
    assert len((await backend.claim("dead", ["default"], 10, 0.05)).jobs) == 2
    await asyncio.sleep(0.2)
    assert len(await backend.rescue_expired(max_lost=3)) == 2
    # The lost jobs are suspects (claimed alone, by an idle worker); the slots are free.
    taken = await claim_ids(backend)
    assert taken == [jobs[2].id]
    suspect = await backend.claim("w2", ["default"], 10, 30, alone=True)
    assert len(suspect.jobs) == 1 and suspect.jobs[0].lost == 1
    assert (await backend.claim("w3", ["default"], 10, 30, alone=True)).jobs == []


async def test_limit_per_key(backend: Backend) -> None:
    def keyed(key: str) -> NewJob:
        return new(limit_key=key, limit_key_concurrency=2)

    a = [keyed("customer:1") for _ in range(3)]
    b = [keyed("customer:2") for _ in range(3)]
    other_task = NewJob(**{**dataclasses.asdict(keyed("customer:1")), "task": "other"})
    await backend.insert([*a, *b, other_task])
    taken = await claim_ids(backend)
    assert set(taken) == {a[0].id, a[1].id, b[0].id, b[1].id, other_task.id}
    claimed = {j.id: j for j in (await backend.claim("w1", ["default"], 1, 30)).jobs}
    assert claimed == {}
    record = await backend.get(a[0].id)
    assert record is not None
    assert await backend.complete([Completion(a[0].id, record.attempt, "null")]) == [True]
    assert await claim_ids(backend) == [a[2].id]


async def test_task_limit_and_key_limit_together(backend: Backend) -> None:
    jobs = [new(limit_concurrency=3, limit_key=k, limit_key_concurrency=1)
            for k in ("a", "a", "b", "c", "d")]
    await backend.insert(jobs)
    taken = await claim_ids(backend)
    assert taken == [jobs[0].id, jobs[2].id, jobs[3].id]
    record = await backend.get(jobs[0].id)
    assert record is not None
    await backend.complete([Completion(jobs[0].id, record.attempt, "null")])
    # The key "a" and one task slot are free: the second "a" or "d" may run, not both.
    assert len(await claim_ids(backend)) == 1
    assert await claim_ids(backend) == []


async def test_priority_order_is_kept_among_parked_jobs(backend: Backend) -> None:
    low, high = new(limit_concurrency=1), new(limit_concurrency=1, priority=5)
    first = new(limit_concurrency=1, priority=9)
    await backend.insert([first])
    assert await claim_ids(backend) == [first.id]
    await backend.insert([low, high])
    assert await claim_ids(backend) == []
    await backend.complete([Completion(first.id, 1, "null")])
    assert await claim_ids(backend) == [high.id]


async def test_rate_limit_delays_the_jobs_over_the_rate(backend: Backend) -> None:
    jobs = [new(rate_count=3, rate_period=1.0) for _ in range(5)]
    free = new(task="free")
    await backend.insert([*jobs, free])
    claim = await backend.claim("w1", ["default"], 100, 30)
    assert [j.id for j in claim.jobs[:3]] == [j.id for j in jobs[:3]]
    assert claim.jobs[3].id == free.id and len(claim.jobs) == 4
    late = await backend.get(jobs[3].id)
    assert late is not None and late.state is JobState.SCHEDULED
    # Delayed to when the window has room (the first start + 1 s), never failed; the claim
    # says when, so the worker sleeps until then.
    assert claim.next_run_at is not None
    assert claim.now + 0.5 < claim.next_run_at <= claim.now + 1.05
    # Finishing the jobs does not reset a rate: it counts starts.
    for job in claim.jobs[:3]:
        await backend.complete([Completion(job.id, job.attempt, "null")])
    assert await claim_ids(backend) == []
    await asyncio.sleep(max(0.0, claim.next_run_at - claim.now) + 0.05)
    assert set(await claim_ids(backend)) == {jobs[3].id, jobs[4].id}


async def test_rate_limit_counts_per_task(backend: Backend) -> None:
    a = [new(task="a", rate_count=1, rate_period=30.0) for _ in range(2)]
    b = [new(task="b", rate_count=1, rate_period=30.0) for _ in range(2)]
    await backend.insert([*a, *b])
    assert set(await claim_ids(backend)) == {a[0].id, b[0].id}
    assert await claim_ids(backend) == []


async def test_rate_limit_with_claims_of_one(backend: Backend) -> None:
    jobs = [new(rate_count=3, rate_period=30.0) for _ in range(4)]
    await backend.insert(jobs)
    for job in jobs[:3]:
        assert await claim_ids(backend, 1) == [job.id]
    assert await claim_ids(backend, 1) == []
    late = await backend.get(jobs[3].id)
    assert late is not None and late.state is JobState.SCHEDULED and late.attempt == 0
