"""Retention on every backend: `Backend.prune` deletes finished jobs past their age, by state,
in bounded batches, with what they own (unique keys included), and touches nothing else;
the housekeeping leader prunes by the app's `Retention`."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from backburner import Backburner, ConfigurationError, JobState, Retention, codec
from backburner.backends.protocol import Backend, Completion, Failure, JobFilter, NewJob
from backburner.job import FailureReason
from backburner.retention import prune_expired
from backburner.testing import ManualClock, memory_backend
from backburner.unique import UniqueScope
from tests.contract.test_transitions import ERR, new

ALL_NOW = {JobState.COMPLETED: 0.0, JobState.FAILED: 0.0, JobState.CANCELLED: 0.0}


async def finish(backend: Backend, state: JobState, job: NewJob | None = None) -> str:
    """A job of queue `default` taken to `state` (completed, failed or cancelled)."""
    job = job or new()
    await backend.insert([job])
    if state is JobState.CANCELLED:
        assert await backend.cancel(job.id) is JobState.CANCELLED
        return job.id
    [claimed] = (await backend.claim("w1", [job.queue], 1, 30.0)).jobs
    assert claimed.id == job.id
    if state is JobState.COMPLETED:
        assert await backend.complete([Completion(job.id, claimed.attempt, "1")]) == [True]
    else:
        failure = Failure(job.id, claimed.attempt, ERR, FailureReason.ERROR)
        assert await backend.fail([failure]) == [True]
    return job.id


async def exists(backend: Backend, job_id: str) -> bool:
    return await backend.get(job_id) is not None


async def test_prune_by_age_and_state_touches_nothing_else(backend: Backend) -> None:
    old = {s: await finish(backend, s) for s in (JobState.COMPLETED, JobState.FAILED,
                                                 JobState.CANCELLED)}
    await asyncio.sleep(1.0)
    young = await finish(backend, JobState.COMPLETED)
    pending, scheduled = new(), new(delay=3600)
    await backend.insert([pending, scheduled, new(queue="busy")])
    [running] = (await backend.claim("w2", ["busy"], 1, 30.0)).jobs
    await asyncio.sleep(0.05)

    # Completed jobs older than half a second go; failed are kept a day; cancelled forever.
    ages = {JobState.COMPLETED: 0.5, JobState.FAILED: 86400.0}
    assert await backend.prune(ages, 100) == 1
    assert not await exists(backend, old[JobState.COMPLETED])
    for kept in (old[JobState.FAILED], old[JobState.CANCELLED], young, pending.id,
                 scheduled.id, running.id):
        assert await exists(backend, kept), kept
    assert await backend.prune(ages, 100) == 0

    # Age zero: every finished job of the states named goes; live jobs never do.
    assert await backend.prune(ALL_NOW, 100) == 3
    counts = await backend.counts()
    assert counts == {("default", JobState.PENDING): 1, ("default", JobState.SCHEDULED): 1,
                      ("busy", JobState.RUNNING): 1}
    listed = await backend.list_jobs(JobFilter(), limit=10)
    assert {j.id for j in listed.jobs} == {pending.id, scheduled.id, running.id}
    assert await backend.prune({}, 100) == 0


async def test_prune_respects_its_limit(backend: Backend) -> None:
    for state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
        for _ in range(2):
            await finish(backend, state)
    await finish(backend, JobState.COMPLETED, new(queue="other"))
    await asyncio.sleep(0.05)
    assert [await backend.prune(ALL_NOW, 3) for _ in range(4)] == [3, 3, 1, 0]
    assert await backend.counts() == {}


async def test_a_pruned_job_frees_its_unique_key(backend: Backend) -> None:
    keyed = dataclasses.replace(new(), unique_key="k")
    await finish(backend, JobState.COMPLETED, keyed)
    await asyncio.sleep(0.05)
    assert await backend.prune(ALL_NOW, 10) == 1
    again = dataclasses.replace(new(), unique_key="k")
    [inserted] = await backend.insert([again])
    assert inserted.id == again.id  # stored: nothing holds the key any more
    [duplicate] = await backend.insert([dataclasses.replace(new(), unique_key="k")])
    assert duplicate.id == again.id  # and the new job holds it


def period_tick(key: str, unique_for: float) -> NewJob:
    """A job holding a periodic tick's key (period scope) for `unique_for` seconds."""
    return dataclasses.replace(new(), unique_key=key, unique_scope=UniqueScope.PERIOD,
                               unique_for=unique_for)


async def test_a_job_holding_a_period_key_is_kept_until_the_key_lapses(
    backend: Backend,
) -> None:
    """A periodic tick holds its key for the catch-up window + 1 h: deleting it sooner would
    let a late scheduler enqueue the same tick again.

    No stall of the machine can decide this test: the kept jobs hold their keys for an hour
    and a minute, and the job pruned beside them finished after them with its key already
    lapsed, so they were old enough to go and only their keys kept them. (That one job is
    kept, then pruned once its key lapses, is shown on the memory store's clock below.)"""
    held = await finish(backend, JobState.COMPLETED, period_tick("periodic:s@1", 3600.0))
    holding = await finish(backend, JobState.COMPLETED, period_tick("periodic:s@2", 60.0))
    lapsed = await finish(backend, JobState.COMPLETED, period_tick("periodic:s@3", 0.1))
    await asyncio.sleep(0.3)  # past the last key's hold (a slower machine: further past)
    assert await backend.prune(ALL_NOW, 10) == 1
    assert await exists(backend, held) and await exists(backend, holding)
    assert not await exists(backend, lapsed)
    assert await backend.prune(ALL_NOW, 10) == 0
    [duplicate] = await backend.insert([period_tick("periodic:s@1", 3600.0)])
    assert duplicate.id == held  # the tick is still taken exactly once
    fresh = period_tick("periodic:s@3", 3600.0)
    assert await finish(backend, JobState.COMPLETED, fresh) == fresh.id  # the key was free
    # A held job does not block the batches behind it.
    plain = await finish(backend, JobState.COMPLETED)
    await asyncio.sleep(0.05)
    assert await backend.prune({JobState.COMPLETED: 0.0}, 1) == 1
    assert not await exists(backend, plain) and await exists(backend, held)


async def test_a_job_is_pruned_once_its_period_key_lapses() -> None:
    """The same job, on the memory store's manual clock: kept while its key is held (a tenth
    of a second before the minute is up), pruned once it lapses (a tenth after)."""
    clock = ManualClock()
    backend = memory_backend(clock)
    await backend.open()
    try:
        job = await finish(backend, JobState.COMPLETED, period_tick("periodic:s@1", 60.0))
        clock.advance(59.9)
        assert await backend.prune(ALL_NOW, 10) == 0 and await exists(backend, job)
        clock.advance(0.2)
        assert await backend.prune(ALL_NOW, 10) == 1 and not await exists(backend, job)
    finally:
        await backend.close()


async def test_prune_expired_loops_over_full_batches(backend: Backend) -> None:
    for _ in range(5):
        await finish(backend, JobState.COMPLETED)
    await asyncio.sleep(0.05)
    retention = Retention(completed=timedelta(0), batch=2)
    assert await prune_expired(backend, retention) == 5
    assert await backend.counts() == {}


async def test_the_leader_prunes_by_the_apps_retention(backend: Backend) -> None:
    app = Backburner(backend=backend, poll_interval=0.2,
                     retention=Retention(completed=0.2, failed=None, interval=0.1))

    @app.task(retries=0)
    async def work(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    ok, bad = await work.enqueue(False), await work.enqueue(True)
    worker = app.worker(scheduler=False, rescue_interval=0.1, poll_interval=0.1)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(100):
            if not await exists(backend, ok.id):
                break
            await asyncio.sleep(0.1)
        assert not await exists(backend, ok.id)
        record = await backend.get(bad.id)
        assert record is not None and record.state is JobState.FAILED  # failed: kept
    finally:
        worker.stop()
        await running


@pytest.mark.parametrize(
    "options",
    [{"completed": timedelta(seconds=-1)}, {"failed": -5.0}, {"cancelled": float("nan")},
     {"completed": "1h"}, {"interval": 0}, {"batch": 0}, {"batch": True}],
)
def test_bad_retention_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="retention"):
        Retention(**options)  # type: ignore[arg-type]


def test_retention_defaults_and_forever() -> None:
    assert Retention().ages == {JobState.COMPLETED: 86400.0, JobState.FAILED: 604800.0,
                                JobState.CANCELLED: 604800.0}
    assert Retention.forever().ages == {}
    assert Backburner("memory://").retention == Retention()
    with pytest.raises(ConfigurationError, match="retention"):
        Backburner("memory://", retention={"completed": 1})  # type: ignore[arg-type]


async def test_a_job_a_flow_still_waits_for_is_kept(app: Backburner) -> None:
    """A group's callback reads its members' results when the last one completes: a member
    that completed long before must not be pruned while the callback waits."""

    @app.task
    async def member(n: int) -> int:
        return n

    @app.task
    async def collect(results: list[int]) -> list[int]:
        return results

    backend = app.backend
    await app.group([member.call(1), member.call(2)], then=collect.pipe())

    async def complete_next() -> str:
        [job] = (await backend.claim("w1", ["default"], 1, 30.0)).jobs
        given = [*codec.loads(job.args), *codec.loads(job.kwargs).values()]
        result = codec.dumps(given[0])
        done = Completion(job.id, job.attempt, result, has_dependents=job.has_dependents)
        assert await backend.complete([done]) == [True]
        return job.id

    first = await complete_next()
    await asyncio.sleep(0.05)
    assert await backend.prune(ALL_NOW, 10) == 0  # the callback waits for the second member
    assert await exists(backend, first)
    second = await complete_next()
    await asyncio.sleep(0.05)
    assert await backend.prune(ALL_NOW, 10) == 2  # the callback is ready: nothing waits
    assert not await exists(backend, first) and not await exists(backend, second)
    [callback] = (await backend.claim("w1", ["default"], 1, 30.0)).jobs
    assert callback.task == collect.name and codec.loads(callback.args) == [[1, 2]]
