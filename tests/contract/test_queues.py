"""Queue controls on every backend: a paused queue's jobs are stored but never claimed (by
the claim itself, for every worker), a resume wakes workers at once, and `app.queues()`
reports each queue's state and counts."""

from __future__ import annotations

import asyncio

import pytest

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.protocol import Backend, Failure
from backburner.job import FailureReason
from tests.contract.test_transitions import ERR, new


async def test_a_paused_queue_is_never_claimed_and_others_are(backend: Backend) -> None:
    before = await backend.now()
    assert await backend.queue_states() == {}
    await backend.insert([new(queue="mail"), new(queue="mail"), new(queue="other")])
    await backend.set_queue_paused("mail", True)
    state = (await backend.queue_states())["mail"]
    assert state.paused and state.changed_at >= before - 1

    claim = await backend.claim("w1", ["mail", "other"], 10, 30.0)
    assert [j.queue for j in claim.jobs] == ["other"]
    assert (await backend.claim("w1", ["mail"], 10, 30.0)).jobs == []
    assert (await backend.claim("w2", ["mail"], 10, 30.0, alone=True)).jobs == []
    # Enqueueing into a paused queue still stores the job; it waits.
    await backend.insert([new(queue="mail")])
    counts = await backend.counts()
    assert counts[("mail", JobState.PENDING)] == 3

    await backend.set_queue_paused("mail", False)
    assert not (await backend.queue_states())["mail"].paused
    claim = await backend.claim("w1", ["mail"], 10, 30.0)
    assert len(claim.jobs) == 3 and {j.queue for j in claim.jobs} == {"mail"}


async def test_a_paused_queue_hides_its_suspects_and_its_due_jobs(backend: Backend) -> None:
    """Jobs that lost a worker wait for the resume too, and are not reported as waiting for
    an idle worker (a busy worker would stop claiming for nothing)."""
    await backend.insert([new(queue="q", max_attempts=5)])
    claim = await backend.claim("w1", ["q"], 1, 0.05)
    await asyncio.sleep(0.2)
    await backend.rescue_expired(max_lost=3)
    await backend.insert([new(queue="q", delay=0.05)])
    await asyncio.sleep(0.1)
    await backend.set_queue_paused("q", True)
    for alone in (False, True):
        found = await backend.claim("w2", ["q", "elsewhere"], 10, 30.0, alone=alone)
        assert found.jobs == [] and not found.suspects_waiting
    await backend.set_queue_paused("q", False)
    found = await backend.claim("w2", ["q"], 10, 30.0, alone=True)
    assert [j.id for j in found.jobs] == [claim.jobs[0].id]  # the suspect, alone
    assert len((await backend.claim("w2", ["q"], 10, 30.0)).jobs) == 1  # the due one


async def test_pause_holds_for_a_retry_in_backoff(backend: Backend) -> None:
    await backend.insert([new(queue="q")])
    [job] = (await backend.claim("w1", ["q"], 1, 30.0)).jobs
    await backend.fail([Failure(job.id, job.attempt, ERR, FailureReason.ERROR, retry_in=0.05)])
    await backend.set_queue_paused("q", True)
    await asyncio.sleep(0.1)
    assert (await backend.claim("w1", ["q"], 1, 30.0)).jobs == []
    await backend.set_queue_paused("q", False)
    assert [j.id for j in (await backend.claim("w1", ["q"], 1, 30.0)).jobs] == [job.id]


async def test_app_pause_resume_and_listing(app: Backburner) -> None:
    @app.task(queue="reports")
    async def report(n: int) -> int:
        return n

    @app.task
    async def other() -> None: ...

    assert await app.queues() == []
    await app.pause_queue("reports")
    first = await report.enqueue(1)
    await report.enqueue(2)
    await other.enqueue()
    await app.pause_queue("never-used")  # a queue can be paused before its first job

    infos = {q.name: q for q in await app.queues()}
    assert sorted(infos) == ["default", "never-used", "reports"]
    reports = infos["reports"]
    assert reports.paused and reports.changed_at is not None
    assert reports.counts[JobState.PENDING] == 2 and reports.total == 2
    assert set(reports.counts) == set(JobState)
    assert not infos["default"].paused and infos["default"].changed_at is None
    assert infos["never-used"].total == 0

    worker = app.worker(queues=["reports", "default"], burst=True)
    await worker.run()
    assert (await app.queue("default")).counts[JobState.COMPLETED] == 1
    assert (await app.get_job(first.id)).state is JobState.PENDING  # type: ignore[union-attr]

    await app.resume_queue("reports")
    resumed = await app.queue("reports")
    assert not resumed.paused and resumed.changed_at is not None
    await app.worker(queues=["reports"], burst=True).run()
    assert await first.result(timeout=10) == 1
    assert (await app.queue("reports")).counts[JobState.COMPLETED] == 2

    unknown = await app.queue("nobody")
    assert not unknown.paused and unknown.total == 0 and unknown.changed_at is None
    for bad in ("", "x" * 201, "nul\x00"):
        with pytest.raises(ConfigurationError, match="queue name"):
            await app.pause_queue(bad)
        with pytest.raises(ConfigurationError, match="queue name"):
            await app.queue(bad)


async def test_a_pause_stops_a_running_worker_and_a_resume_wakes_it(app: Backburner) -> None:
    """The worker polls only every 60 s here: the job runs after the resume because the
    resume woke it (as an enqueue does), not because a poll came round.

    That the paused job waits is shown by a burst drain, not a sleep: a second worker on the
    queue returns once two claims in a row, both made after the enqueue, came back empty. Had
    the pause not held, it (or the running worker, woken by the enqueue) would have claimed
    and run the job, and the job would not be pending."""

    @app.task(queue="q")
    async def job() -> str:
        return "done"

    worker = app.worker(queues=["q"], poll_interval=60.0, scheduler=False)
    running = asyncio.create_task(worker.run())
    try:
        first = await job.enqueue()
        assert await first.result(timeout=10) == "done"
        await app.pause_queue("q")
        waiting = await job.enqueue()
        await app.worker(queues=["q"], burst=True, scheduler=False,
                         handle_signals=False).run()
        record = await app.get_job(waiting.id)
        assert record is not None and record.state is JobState.PENDING
        await app.resume_queue("q")
        assert await waiting.result(timeout=10) == "done"
    finally:
        worker.stop()
        await running
