"""The backend contract: every backend must pass these unchanged."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from backburner import codec
from backburner.backends.protocol import (
    Backend,
    Completion,
    Failure,
    JobFilter,
    NewJob,
    Release,
    WorkerInfo,
)
from backburner.errors import ConfigurationError
from backburner.ids import new_job_id
from backburner.job import FailureReason, JobState

ERR = {"type": "ValueError", "message": "boom", "traceback": "tb"}


def new(
    task: str = "t", queue: str = "default", priority: int = 0, delay: float = 0.0,
    max_attempts: int = 3, args: list[object] | None = None,
) -> NewJob:
    return NewJob(
        id=new_job_id(), task=task, queue=queue, priority=priority,
        args=codec.dumps(args or []), kwargs=codec.dumps({"k": 1}),
        max_attempts=max_attempts, delay=delay,
    )


async def claim_one(
    backend: Backend, worker: str = "w1", lease: float = 30.0, alone: bool = False
) -> tuple[str, int]:
    claim = await backend.claim(worker, ["default"], 1, lease, alone=alone)
    assert len(claim.jobs) == 1
    return claim.jobs[0].id, claim.jobs[0].attempt


async def test_insert_then_get_returns_the_full_record(backend: Backend) -> None:
    job = new(args=[1, "x"])
    await backend.insert([job])
    record = await backend.get(job.id)
    assert record is not None
    assert record.state is JobState.PENDING
    assert (record.task, record.queue, record.priority) == ("t", "default", 0)
    assert record.args == [1, "x"] and record.kwargs == {"k": 1}
    assert (record.attempt, record.max_attempts, record.failures, record.lost) == (0, 3, 0, 0)
    assert record.errors == () and record.result is None and record.progress is None
    assert record.created_at == record.updated_at
    assert record.started_at is None and record.finished_at is None
    assert await backend.get("unknown") is None


async def test_claim_takes_higher_priority_first_then_oldest(backend: Backend) -> None:
    low1, high, low2 = new(priority=0), new(priority=5), new(priority=0)
    await backend.insert([low1])
    await backend.insert([high])
    await backend.insert([low2])
    claim = await backend.claim("w1", ["default"], 10, 30)
    assert [j.id for j in claim.jobs] == [high.id, low1.id, low2.id]
    assert all(j.attempt == 1 for j in claim.jobs)
    record = await backend.get(high.id)
    assert record is not None and record.state is JobState.RUNNING
    assert record.worker_id == "w1" and record.started_at is not None
    assert record.lease_until is not None and record.lease_until > record.started_at


async def test_claim_respects_limit_and_queue_order(backend: Backend) -> None:
    a = [new(queue="a") for _ in range(3)]
    b = [new(queue="b") for _ in range(3)]
    await backend.insert(b + a)
    claim = await backend.claim("w1", ["a", "b"], 4, 30)
    assert [j.queue for j in claim.jobs] == ["a", "a", "a", "b"]
    claim = await backend.claim("w1", ["c"], 4, 30)
    assert claim.jobs == []


async def test_concurrent_claims_never_share_a_job(backend: Backend) -> None:
    await backend.insert([new() for _ in range(50)])
    claims = await asyncio.gather(*(backend.claim(f"w{i}", ["default"], 7, 30) for i in range(10)))
    ids = [j.id for c in claims for j in c.jobs]
    assert len(ids) == len(set(ids)) == 50


async def test_delayed_job_is_scheduled_until_due(backend: Backend) -> None:
    job = new(delay=0.3)
    await backend.insert([job])
    record = await backend.get(job.id)
    assert record is not None and record.state is JobState.SCHEDULED
    claim = await backend.claim("w1", ["default"], 1, 30)
    assert claim.jobs == []
    assert claim.next_run_at is not None and 0 < claim.next_run_at - claim.now <= 0.31
    await asyncio.sleep(0.35)
    claim = await backend.claim("w1", ["default"], 1, 30)
    assert [j.id for j in claim.jobs] == [job.id]


async def test_complete_is_fenced_by_attempt(backend: Backend) -> None:
    job = new()
    await backend.insert([job])
    job_id, attempt = await claim_one(backend)
    assert await backend.complete([Completion(job_id, attempt + 1, "1")]) == [False]
    assert await backend.complete([Completion(job_id, attempt, '{"ok":true}')]) == [True]
    record = await backend.get(job_id)
    assert record is not None and record.state is JobState.COMPLETED
    assert record.result == {"ok": True} and record.finished_at is not None
    # a second write for the same attempt is refused: the job is no longer running
    assert await backend.complete([Completion(job_id, attempt, "2")]) == [False]


async def test_fail_with_retry_schedules_and_keeps_the_error(backend: Backend) -> None:
    await backend.insert([new()])
    job_id, attempt = await claim_one(backend)
    ok = await backend.fail([Failure(job_id, attempt, ERR, FailureReason.ERROR, retry_in=0.2)])
    assert ok == [True]
    record = await backend.get(job_id)
    assert record is not None and record.state is JobState.SCHEDULED
    assert record.failures == 1 and record.worker_id is None and record.reason is None
    assert [(e.attempt, e.type, e.message, e.reason) for e in record.errors] == [
        (1, "ValueError", "boom", FailureReason.ERROR)
    ]
    assert (record.run_at - record.updated_at).total_seconds() == pytest.approx(0.2, abs=0.01)
    await asyncio.sleep(0.25)
    job_id2, attempt2 = await claim_one(backend)
    assert (job_id2, attempt2) == (job_id, 2)


async def test_fail_without_retry_ends_the_job(backend: Backend) -> None:
    await backend.insert([new(), new()])
    first, a1 = await claim_one(backend)
    second, a2 = await claim_one(backend)
    await backend.fail([
        Failure(first, a1, ERR, FailureReason.TIMEOUT),
        Failure(second, a2, ERR, FailureReason.CANCELLED, counts=False),
    ])
    r1, r2 = await backend.get(first), await backend.get(second)
    assert r1 is not None and r1.state is JobState.FAILED and r1.reason is FailureReason.TIMEOUT
    assert r1.failures == 1 and r1.finished_at is not None
    assert r2 is not None and r2.state is JobState.CANCELLED and r2.failures == 0


async def test_release_makes_the_job_ready_again(backend: Backend) -> None:
    await backend.insert([new()])
    job_id, attempt = await claim_one(backend)
    assert await backend.release([Release(job_id, attempt)]) == [True]
    record = await backend.get(job_id)
    assert record is not None and record.state is JobState.PENDING and record.failures == 0
    assert await claim_one(backend) == (job_id, attempt + 1)
    # the released attempt can no longer write
    assert await backend.complete([Completion(job_id, attempt, "1")]) == [False]


async def test_heartbeat_extends_own_leases_and_reports_cancel_requests(backend: Backend) -> None:
    await backend.insert([new(), new()])
    mine, attempt = await claim_one(backend, "w1", lease=0.5)
    other, _ = await claim_one(backend, "w2", lease=0.5)
    before = await backend.get(mine)
    assert await backend.cancel(mine) is JobState.RUNNING  # a request, the job still runs
    beat = await backend.heartbeat("w1", 30)
    assert beat.owned == {mine: attempt}
    assert beat.cancel_requested == {mine}
    after = await backend.get(mine)
    assert before is not None and after is not None
    assert after.lease_until is not None and before.lease_until is not None
    assert after.lease_until > before.lease_until
    assert after.cancel_requested
    assert other not in beat.owned


async def test_rescue_expired_requeues_then_fails_worker_lost(backend: Backend) -> None:
    await backend.insert([new()])
    for round_ in range(1, 4):
        # after its first loss the job is a suspect, claimed only by an idle worker
        job_id, attempt = await claim_one(backend, lease=0.05, alone=round_ > 1)
        assert attempt == round_
        await asyncio.sleep(0.1)
        moved = await backend.rescue_expired(max_lost=3)
        assert [(t.id, t.state) for t in moved] == [
            (job_id, JobState.PENDING if round_ < 3 else JobState.FAILED)
        ]
        # the lost attempt is fenced off
        assert await backend.complete([Completion(job_id, attempt, "1")]) == [False]
        assert not await backend.update_progress(job_id, attempt, '{"current":1}')
    record = await backend.get(job_id)
    assert record is not None and record.state is JobState.FAILED
    assert record.reason is FailureReason.WORKER_LOST and record.lost == 3
    assert record.failures == 0
    assert [e.reason for e in record.errors] == [FailureReason.WORKER_LOST] * 3


async def test_suspects_are_claimed_alone_by_idle_workers(backend: Backend) -> None:
    poison, a, b = new(), new(), new()
    await backend.insert([poison, a, b])
    claim = await backend.claim("w1", ["default"], 3, 0.05)
    assert len(claim.jobs) == 3 and not claim.suspects_waiting
    await asyncio.sleep(0.1)
    assert len(await backend.rescue_expired(max_lost=3)) == 3  # the worker died
    # Never batched together again: a busy worker gets nothing, and learns suspects wait.
    busy = await backend.claim("w2", ["default"], 10, 30)
    assert busy.jobs == [] and busy.suspects_waiting
    for expected in (poison, a, b):
        solo = await backend.claim("w2", ["default"], 10, 30, alone=True)
        assert [j.id for j in solo.jobs] == [expected.id]
        assert solo.jobs[0].lost == 1
    done = await backend.claim("w2", ["default"], 10, 30, alone=True)
    assert done.jobs == [] and not done.suspects_waiting
    # other queues are not held up by suspects
    other = new(queue="other")
    await backend.insert([other, new()])
    mixed = await backend.claim("w3", ["default", "other"], 10, 30, alone=True)
    assert len(mixed.jobs) == 2


async def test_rescue_leaves_live_leases_alone(backend: Backend) -> None:
    await backend.insert([new()])
    await claim_one(backend, lease=30)
    assert await backend.rescue_expired(max_lost=3) == []


async def test_progress_is_fenced(backend: Backend) -> None:
    await backend.insert([new()])
    job_id, attempt = await claim_one(backend)
    progress = '{"current": 2, "total": 4, "message": "half"}'
    assert await backend.update_progress(job_id, attempt, progress)
    assert not await backend.update_progress(job_id, attempt + 1, progress)
    record = await backend.get(job_id)
    assert record is not None and record.progress is not None
    assert record.progress.percent == 50 and record.progress.message == "half"


async def test_a_new_attempt_starts_without_the_last_ones_progress(backend: Backend) -> None:
    # A stream that shows attempt 2 with attempt 1's 75 % would see progress go back when
    # attempt 2 reports its first step.
    await backend.insert([new()])
    job_id, attempt = await claim_one(backend)
    assert await backend.update_progress(job_id, attempt, '{"current": 3, "total": 4}')
    assert await backend.release([Release(job_id, attempt)]) == [True]
    kept = await backend.get(job_id)
    assert kept is not None and kept.progress is not None  # shown while it waits
    assert await claim_one(backend) == (job_id, attempt + 1)
    record = await backend.get(job_id)
    assert record is not None and record.attempt == attempt + 1 and record.progress is None


async def test_cancel_waiting_jobs_and_unknown_ids(backend: Backend) -> None:
    pending, scheduled = new(), new(delay=60)
    await backend.insert([pending, scheduled])
    assert await backend.cancel(pending.id) is JobState.CANCELLED
    assert await backend.cancel(scheduled.id) is JobState.CANCELLED
    assert await backend.cancel("unknown") is None
    record = await backend.get(scheduled.id)
    assert record is not None and record.reason is FailureReason.CANCELLED
    assert (await backend.claim("w1", ["default"], 5, 30)).jobs == []


async def test_retry_revives_failed_jobs_only(backend: Backend) -> None:
    await backend.insert([new(max_attempts=1), new()])
    failed, attempt = await claim_one(backend)
    running, _ = await claim_one(backend)
    await backend.fail([Failure(failed, attempt, ERR, FailureReason.ERROR)])
    assert await backend.retry(failed) is JobState.PENDING
    record = await backend.get(failed)
    assert record is not None and record.failures == 0 and record.reason is None
    assert len(record.errors) == 1  # history is kept
    assert await backend.retry(running) is JobState.RUNNING
    assert await backend.retry("unknown") is None
    assert await claim_one(backend) == (failed, attempt + 1)


async def test_delete_refuses_running_jobs(backend: Backend) -> None:
    await backend.insert([new(), new()])
    running, _ = await claim_one(backend)
    pending = [j for j in (await backend.list_jobs(JobFilter())).jobs if j.id != running][0]
    assert not await backend.delete(running)
    assert await backend.delete(pending.id)
    assert await backend.get(pending.id) is None
    assert not await backend.delete(pending.id)


async def test_list_filters_and_paginates_newest_first(backend: Backend) -> None:
    jobs = [new(task="a" if i % 2 else "b", queue="q1" if i < 6 else "q2") for i in range(10)]
    for job in jobs:
        await backend.insert([job])
    page = await backend.list_jobs(JobFilter(), limit=4)
    assert [j.id for j in page.jobs] == [j.id for j in reversed(jobs)][:4]
    seen = [j.id for j in page.jobs]
    while page.next_cursor:
        page = await backend.list_jobs(JobFilter(), limit=4, cursor=page.next_cursor)
        seen += [j.id for j in page.jobs]
    assert seen == [j.id for j in reversed(jobs)]
    only_a = await backend.list_jobs(JobFilter(task="a", queue="q1"))
    assert {j.id for j in only_a.jobs} == {j.id for j in jobs[:6] if j.task == "a"}
    await backend.claim("w", ["q2"], 2, 30)
    running = await backend.list_jobs(JobFilter(states=(JobState.RUNNING,)))
    assert len(running.jobs) == 2


async def test_counts_by_queue_and_state(backend: Backend) -> None:
    await backend.insert([new(queue="a"), new(queue="a"), new(queue="b", delay=60)])
    await backend.claim("w", ["a"], 1, 30)
    counts = await backend.counts()
    assert counts == {
        ("a", JobState.PENDING): 1,
        ("a", JobState.RUNNING): 1,
        ("b", JobState.SCHEDULED): 1,
    }


async def test_insert_many_is_all_or_nothing(backend: Backend) -> None:
    first = new()
    await backend.insert([first])
    with pytest.raises(Exception):  # noqa: B017, PT011 - each store names it its own way
        await backend.insert([new(), dataclasses.replace(first)])  # duplicate id
    assert len((await backend.list_jobs(JobFilter())).jobs) == 1


async def test_workers_register_heartbeat_and_leave(backend: Backend) -> None:
    await backend.register_worker(WorkerInfo("w1", "host", 123, ("default",), 4))
    workers = await backend.list_workers()
    assert [(w.id, w.pid, w.queues, w.concurrency) for w in workers] == [
        ("w1", 123, ("default",), 4)
    ]
    first_beat = workers[0].heartbeat_at
    await asyncio.sleep(0.01)
    await backend.heartbeat("w1", 30)
    assert (await backend.list_workers())[0].heartbeat_at > first_beat
    await backend.deregister_worker("w1")
    assert await backend.list_workers() == []


async def test_notifier_delivers_wakeups_to_subscribers(backend: Backend) -> None:
    from backburner.notify import Event

    with backend.notifier.subscribe(["wakeup"]) as sub:
        backend.notifier.publish([Event("wakeup", "default")])
        assert await sub.wait(1.0)
        assert [e.queue for e in sub.drain()] == ["default"]


async def test_one_housekeeping_leader_at_a_time(backend: Backend) -> None:
    assert await backend.lead("w1", 0.3)
    assert not await backend.lead("w2", 0.3)
    assert await backend.lead("w1", 0.3)  # renewal
    await asyncio.sleep(0.4)
    assert await backend.lead("w2", 0.3)  # w1 lapsed
    assert not await backend.lead("w1", 0.3)
    await backend.resign("w2")
    assert await backend.lead("w1", 0.3)  # at once after a resignation
    await backend.resign("w2")  # not the holder: nothing happens
    assert not await backend.lead("w3", 0.3)


@pytest.mark.parametrize("cursor", ["abc", "-1", "9" * 26, "1.5", ""])
async def test_a_bad_cursor_is_a_configuration_error(backend: Backend, cursor: str) -> None:
    # Found by R19 through the router: a 26-digit cursor overflowed SQLite's integers.
    with pytest.raises(ConfigurationError, match="invalid cursor"):
        await backend.list_jobs(JobFilter(), cursor=cursor)
