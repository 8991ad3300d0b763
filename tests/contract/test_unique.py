"""Unique jobs, on every backend: a duplicate enqueue returns the live holder's handle and
stores nothing; a key is free again once its holder leaves the scope."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.protocol import (
    Backend,
    Completion,
    Failure,
    Inserted,
    JobFilter,
    NewJob,
    Release,
)
from backburner.job import FailureReason
from backburner.unique import UniqueScope

ERR = {"type": "ValueError", "message": "boom", "traceback": None}


async def jobs_of(app: Backburner, task: str) -> list[str]:
    return [j.id for j in (await app.list_jobs(task=task, limit=1000)).jobs]


async def claim_all(backend: Backend, queue: str = "default") -> list[tuple[str, int]]:
    claim = await backend.claim("w1", [queue], 100, 30.0)
    return [(j.id, j.attempt) for j in claim.jobs]


async def test_duplicate_returns_the_holder_and_stores_nothing(app: Backburner) -> None:
    @app.task
    async def charge(order: int) -> None: ...

    first = await charge.options(unique_key="order-42").enqueue(42)
    again = await charge.options(unique_key="order-42").enqueue(43)
    assert not first.duplicate and again.duplicate
    assert again.id == first.id and again.initial_state is JobState.PENDING
    assert await jobs_of(app, charge.name) == [first.id]
    assert (await first.info()).unique_key == "order-42"
    # Keys belong to a task and a queue.
    other_queue = await charge.options(unique_key="order-42", queue="q2").enqueue(42)
    assert not other_queue.duplicate

    @app.task
    async def refund(order: int) -> None: ...

    assert not (await refund.options(unique_key="order-42").enqueue(42)).duplicate


async def test_derived_key_ignores_how_the_arguments_were_spelled(app: Backburner) -> None:
    @app.task
    async def sync(account: int, full: bool = False) -> None: ...

    a = await sync.options(unique=True).enqueue(1, full=True)
    b = await sync.options(unique=True).enqueue(account=1, full=True)
    c = await sync.options(unique=True).enqueue(1)
    assert b.duplicate and b.id == a.id
    assert not c.duplicate
    plain = await sync.enqueue(1, full=True)  # no key: never a duplicate
    assert not plain.duplicate


async def test_active_scope_holds_while_running_and_frees_on_completion(
    app: Backburner,
) -> None:
    @app.task
    async def build() -> None: ...

    bound = build.options(unique_key="main")
    first = await bound.enqueue()
    [(job_id, attempt)] = await claim_all(app.backend)
    assert job_id == first.id
    running = await bound.enqueue()
    assert running.duplicate and running.id == first.id
    assert running.initial_state is JobState.RUNNING
    assert await app.backend.complete([Completion(job_id, attempt, "null")]) == [True]
    after = await bound.enqueue()
    assert not after.duplicate and after.id != first.id


async def test_queued_scope_frees_the_key_once_the_holder_starts(app: Backburner) -> None:
    @app.task
    async def reindex() -> None: ...

    bound = reindex.options(unique_key="idx", unique_scope="queued")
    first = await bound.enqueue()
    assert (await bound.enqueue()).id == first.id
    [(job_id, attempt)] = await claim_all(app.backend)
    second = await bound.enqueue()
    assert not second.duplicate
    # The first one going back to waiting (a retry in backoff) does not take it back.
    failure = Failure(job_id, attempt, ERR, FailureReason.ERROR, retry_in=0.0)
    assert await app.backend.fail([failure]) == [True]
    third = await bound.enqueue()
    assert third.duplicate and third.id == second.id


async def test_failed_cancelled_and_deleted_holders_free_the_key(app: Backburner) -> None:
    @app.task
    async def mail() -> None: ...

    bound = mail.options(unique_key="welcome")
    first = await bound.enqueue()
    [(job_id, attempt)] = await claim_all(app.backend)
    await app.backend.fail([Failure(job_id, attempt, ERR, FailureReason.ERROR)])
    second = await bound.enqueue()
    assert not second.duplicate
    assert await app.cancel(second.id) is JobState.CANCELLED
    third = await bound.enqueue()
    assert not third.duplicate
    assert await app.delete(third.id)
    fourth = await bound.enqueue()
    assert not fourth.duplicate
    # A holder retried by hand while another holds the key runs without it: no error,
    # and the key stays with the live holder.
    assert await app.retry(first.id) is JobState.PENDING
    again = await bound.enqueue()
    assert again.duplicate and again.id == fourth.id


async def test_period_scope_holds_after_completion_until_it_lapses(app: Backburner) -> None:
    @app.task
    async def digest() -> None: ...

    bound = digest.options(unique_key="daily", unique_for=timedelta(seconds=0.5))
    first = await bound.enqueue()
    [(job_id, attempt)] = await claim_all(app.backend)
    await app.backend.complete([Completion(job_id, attempt, "null")])
    done = await bound.enqueue()
    assert done.duplicate and done.id == first.id
    assert done.initial_state is JobState.COMPLETED
    await asyncio.sleep(0.7)
    later = await bound.enqueue()
    assert not later.duplicate


async def test_enqueue_many_with_repeated_and_held_keys(app: Backburner) -> None:
    @app.task
    async def ping(host: str) -> None: ...

    held = await ping.options(unique=True).enqueue("a")
    handles = await ping.options(unique=True).enqueue_many([("a",), ("b",), ("b",), ("c",)])
    assert [h.duplicate for h in handles] == [True, False, True, False]
    assert handles[0].id == held.id and handles[2].id == handles[1].id
    assert len(set(await jobs_of(app, ping.name))) == 3


async def test_insert_answers_the_ids_used(backend: Backend) -> None:
    base = NewJob(
        id="", task="t", queue="default", priority=0, args="[]", kwargs="{}",
        max_attempts=1, unique_key="k", unique_scope=UniqueScope.ACTIVE,
    )
    a, b, plain = (dataclasses.replace(base, id=i) for i in ("u-a", "u-b", "u-c"))
    plain = dataclasses.replace(plain, unique_key=None)
    assert await backend.insert([a]) == [Inserted("u-a")]
    assert await backend.insert([b, plain]) == [
        Inserted("u-a", JobState.PENDING), Inserted("u-c"),
    ]
    assert await backend.get("u-b") is None


async def test_concurrent_enqueues_of_one_key_store_one_job(app: Backburner) -> None:
    @app.task
    async def once(n: int) -> None: ...

    handles = await asyncio.gather(
        *(once.options(unique_key="only").enqueue(n) for n in range(30))
    )
    assert len({h.id for h in handles}) == 1
    assert sum(not h.duplicate for h in handles) == 1
    assert len(await jobs_of(app, once.name)) == 1


def test_options_are_checked(app: Backburner) -> None:
    @app.task
    async def t() -> None: ...

    for bad in (
        {"unique_key": ""},
        {"unique_key": "x" * 501},
        {"unique_key": "k", "unique": True},
        {"unique_scope": "forever"},
        {"unique_scope": "period"},
        {"unique_for": 0},
        {"unique_for": 5, "unique_scope": "queued"},
    ):
        with pytest.raises(ConfigurationError):
            t.options(**bad)  # type: ignore[arg-type]


async def test_a_retried_holder_takes_its_free_key_back(app: Backburner) -> None:
    @app.task
    async def export() -> None: ...

    bound = export.options(unique_key="nightly")
    first = await bound.enqueue()
    [(job_id, attempt)] = await claim_all(app.backend)
    await app.backend.fail([Failure(job_id, attempt, ERR, FailureReason.ERROR)])
    second = await bound.enqueue()
    [(second_id, second_attempt)] = await claim_all(app.backend)
    assert second_id == second.id
    await app.backend.complete([Completion(second_id, second_attempt, "null")])
    assert await app.retry(first.id) is JobState.PENDING
    again = await bound.enqueue()
    assert again.duplicate and again.id == first.id


async def test_queued_scope_claim_lets_go_of_the_key(app: Backburner) -> None:
    """Pins the queued scope on every backend: a duplicate of a pending holder is that
    holder; once it runs, the same key makes a new job (Redis judges the holder from its
    record at the next insert instead of deleting the key at claim: same answers, as no
    transition ever puts a claimed job's attempt back to 0)."""

    @app.task
    async def thumb() -> None: ...

    bound = thumb.options(unique_key="t", unique_scope="queued")
    first = await bound.enqueue()
    dup = await bound.enqueue()
    assert dup.duplicate and dup.id == first.id and dup.initial_state is JobState.PENDING
    assert await jobs_of(app, thumb.name) == [first.id]
    [(job_id, attempt)] = await claim_all(app.backend)
    assert job_id == first.id
    second = await bound.enqueue()
    assert not second.duplicate and second.id != first.id
    third = await bound.enqueue()
    assert third.duplicate and third.id == second.id
    assert sorted(await jobs_of(app, thumb.name)) == sorted([first.id, second.id])
    counts = await app.backend.count_jobs(JobFilter(task=thumb.name))
    assert counts == 2
    # The running first one released (a worker shutting down) stays without the key.
    assert await app.backend.release([Release(job_id, attempt)]) == [True]
    fourth = await bound.enqueue()
    assert fourth.duplicate and fourth.id == second.id


@pytest.mark.parametrize("scope", ["active", "queued"])
async def test_retry_while_a_new_job_holds_the_key(app: Backburner, scope: str) -> None:
    """retry() never fails over a key: the new holder keeps it, the retried job runs
    without it, and a duplicate enqueue still answers the new holder."""

    @app.task
    async def sync() -> None: ...

    bound = sync.options(unique_key="s", unique_scope=scope)
    first = await bound.enqueue()
    assert await app.cancel(first.id) is JobState.CANCELLED  # never claimed: attempt 0
    second = await bound.enqueue()
    assert not second.duplicate
    assert await app.retry(first.id) is JobState.PENDING
    again = await bound.enqueue()
    assert again.duplicate and again.id == second.id
    assert (await app.backend.get(first.id)).unique_key is None  # type: ignore[union-attr]
    # The holder ends: the key is free, the retried job does not take it back by itself,
    # not even through another retry.
    assert await app.cancel(second.id) is JobState.CANCELLED
    assert await app.cancel(first.id) is JobState.CANCELLED
    assert await app.retry(first.id) is JobState.PENDING
    fresh = await bound.enqueue()
    assert not fresh.duplicate and fresh.id not in (first.id, second.id)


async def test_retry_of_a_never_claimed_queued_holder_takes_its_free_key(
    app: Backburner,
) -> None:
    @app.task
    async def warm() -> None: ...

    bound = warm.options(unique_key="w", unique_scope="queued")
    first = await bound.enqueue()
    assert await app.cancel(first.id) is JobState.CANCELLED
    assert await app.retry(first.id) is JobState.PENDING
    again = await bound.enqueue()
    assert again.duplicate and again.id == first.id
