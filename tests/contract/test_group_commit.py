"""Group commit (`backburner.group_commit`), on every store: concurrent plain enqueues share
inserts, each caller still gets its own answer, and a bad job fails only its caller."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from backburner import Backburner, JobState
from backburner.backends.protocol import Inserted, NewJob
from backburner.enqueue import DEFAULT_OPTIONS, build_job, insert_jobs

# Stores whose insert waits on the network: concurrent callers pile up behind it and share
# the next one. In-process ones (memory, SQLite's loop-thread path) answer before the next
# caller even starts, so every call is its own insert there, which is just as correct.
SUSPENDING = ("redis", "postgres", "mysql")


def suspends(app: Backburner) -> bool:
    return app.url.startswith(SUSPENDING)


def count_inserts(app: Backburner) -> list[int]:
    """Sizes of the store's insert calls from now on (the real store, only counted)."""
    backend = app.backend
    sizes: list[int] = []
    real = backend.insert

    async def counted(jobs: Sequence[NewJob], *rest: Any) -> list[Inserted]:
        sizes.append(len(jobs))
        return await real(jobs, *rest)

    backend.insert = counted  # type: ignore[method-assign]
    return sizes


async def test_concurrent_enqueues_share_inserts(app: Backburner) -> None:
    @app.task(name="noop")
    async def noop(n: int) -> int:
        return n

    await noop.enqueue(-1)  # opened
    sizes = count_inserts(app)
    jobs = await asyncio.gather(*(noop.enqueue(n) for n in range(200)))
    assert len({j.id for j in jobs}) == 200
    assert sum(sizes) == 200
    if suspends(app):
        assert len(sizes) <= 3, sizes  # the first alone, then the others together
    await app.run_worker(burst=True, concurrency=20)
    assert [await j.result(timeout=10) for j in jobs] == list(range(200))


async def test_a_bad_job_fails_only_its_caller(app: Backburner) -> None:
    @app.task(name="noop")
    async def noop(n: int) -> int:
        return n

    taken = await noop.enqueue(0)
    duplicate = dataclasses.replace(build_job(noop, DEFAULT_OPTIONS, (1,), {}), id=taken.id)
    good = [noop.enqueue(n) for n in range(2, 22)]
    results = await asyncio.gather(
        *good[:10], insert_jobs(app, [duplicate], task=noop), *good[10:],
        return_exceptions=True,
    )
    bad = results.pop(10)
    assert isinstance(bad, Exception), bad
    assert all(not isinstance(r, BaseException) for r in results), results
    for handle in results:
        assert not isinstance(handle, BaseException)
        assert await handle.status() is JobState.PENDING
    page = await app.list_jobs(limit=100)
    assert len(page.jobs) == 21  # the 20 good ones and the first: nothing of the duplicate


async def test_a_caller_cancelled_while_waiting_stores_nothing(app: Backburner) -> None:
    if not suspends(app):
        pytest.skip("an in-process store answers before a second caller starts: none waits")

    @app.task(name="noop")
    async def noop(n: int) -> int:
        return n

    await noop.enqueue(0)
    tasks = [asyncio.create_task(noop.enqueue(n)) for n in range(1, 6)]
    await asyncio.sleep(0)  # all started: the first in flight, the others waiting
    tasks[2].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    assert all(not isinstance(d, BaseException) for i, d in enumerate(done) if i != 2)
    assert await app.count_jobs() == 5


@pytest.mark.parametrize("count", [1, 501])
async def test_batches_are_bounded(app: Backburner, count: int) -> None:
    @app.task(name="noop")
    async def noop(n: int) -> int:
        return n

    await noop.enqueue(0)
    sizes = count_inserts(app)
    await asyncio.gather(*(noop.enqueue(n) for n in range(count + 1)))
    assert max(sizes) <= 500
    assert sum(sizes) == count + 1
