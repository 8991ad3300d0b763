"""R17, retry against insert on PostgreSQL: many pairs of a retry() of a cancelled holder
and a concurrent enqueue of its key. READ COMMITTED lets the retry miss an insert in flight;
the backend must still raise nothing, and never leave two live jobs holding one key."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
