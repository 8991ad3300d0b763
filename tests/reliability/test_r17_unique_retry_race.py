"""R17 on PostgreSQL: transitions that give a job its unique key back, racing enqueues of
that key (READ COMMITTED lets a statement miss an insert in flight). retry() of a cancelled
holder, and a claim over a limit putting a queued-scope job back to attempt 0: the backend
raises nothing, and never leaves two live jobs holding one key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from services import backend_url

from backburner import Backburner, JobState
from backburner.backends import open_backend

pytestmark = pytest.mark.reliability

PAIRS = 200


@pytest.mark.timeout(120)
async def test_retry_racing_inserts_of_the_same_key(tmp_path: Path) -> None:
    backend = open_backend(backend_url("postgres", tmp_path))
    await backend.open()
    try:
        app = Backburner(backend=backend)
        await app.open()

        @app.task
        async def sync(n: int) -> None: ...

        keys = [f"k{n}" for n in range(PAIRS)]
        olds = [await sync.options(unique_key=k).enqueue(n) for n, k in enumerate(keys)]
        for old in olds:
            assert await app.cancel(old.id) is JobState.CANCELLED

        async def pair(n: int) -> tuple[JobState | None, str]:
            retried, new = await asyncio.gather(
                app.retry(olds[n].id), sync.options(unique_key=keys[n]).enqueue(n)
            )
            return retried, new.id

        results = await asyncio.gather(*(pair(n) for n in range(PAIRS)))
        assert all(state is JobState.PENDING for state, _ in results)
        for n, (_, new_id) in enumerate(results):
            # Whoever holds the key now is what a further enqueue answers, and only one
            # live job of the key still carries it.
            again = await sync.options(unique_key=keys[n]).enqueue(n)
            assert again.duplicate and again.id in (olds[n].id, new_id)
            live = [
                info for job_id in {olds[n].id, new_id}
                if (info := await app.get_job(job_id)) is not None
                and info.state is JobState.PENDING and info.unique_key == keys[n]
            ]
            assert len(live) == 1, (n, live)
    finally:
        await backend.destroy()  # type: ignore[attr-defined]
        await backend.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("limit", [{"concurrency": 1}, {"rate_limit": "1/h"}])
async def test_claim_putting_back_a_queued_holder_racing_inserts(
    tmp_path: Path, limit: dict[str, Any]
) -> None:
    """A claim over a limit commits, then puts the job back to attempt 0 (parked, or delayed
    for its rate), where a queued-scope job holds its key again: an enqueue of that key in
    between must not make the claim fail, and one key keeps one live holder."""
    backend = open_backend(backend_url("postgres", tmp_path))
    await backend.open()
    try:
        app = Backburner(backend=backend)
        await app.open()

        @app.task(**limit)
        async def render(n: int) -> None: ...

        await render.enqueue(-1)
        # Takes the only slot (and the hour's only start): every later claim puts back.
        assert len((await backend.claim("w0", ["default"], 1, 60.0)).jobs) == 1
        for n in range(PAIRS):
            bound = render.options(unique_key=f"k{n}", unique_scope="queued")
            first = await bound.enqueue(n)
            claim, dup = await asyncio.gather(
                backend.claim("w1", ["default"], 1, 60.0), bound.enqueue(n)
            )
            assert claim.jobs == []
            again = await bound.enqueue(n)
            assert again.duplicate and again.id in (first.id, dup.id)
            holders = [
                info for job_id in {first.id, dup.id}
                if (info := await app.get_job(job_id)) is not None
                and info.state in (JobState.PENDING, JobState.SCHEDULED)
                and info.unique_key == f"k{n}"
            ]
            assert len(holders) == 1, (n, holders)
    finally:
        await backend.destroy()  # type: ignore[attr-defined]
        await backend.close()
