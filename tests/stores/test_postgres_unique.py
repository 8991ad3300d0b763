"""Unique jobs inside the application's own PostgreSQL transaction (`connection=`): the key
is taken at the insert and held until commit; a rollback frees it and leaves the
application's transaction usable; another session enqueueing the key meanwhile waits for the
outcome, then gets the committed holder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest
from services import POSTGRES_URL

from backburner import Backburner

from .pg_helpers import admin, eventually, opened, schema_url


@pytest.fixture
async def app() -> AsyncIterator[Backburner]:
    url, _ = schema_url()
    async with opened(url) as backend:
        application = Backburner(backend=backend)

        @application.task(name="uq.charge")
        async def charge(order: int) -> None: ...

        await application.open()
        yield application


async def test_rollback_frees_the_key_and_keeps_the_transaction_usable(app: Backburner) -> None:
    charge = app.get_task("uq.charge")
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        tx = conn.transaction()
        await tx.start()
        first = await charge.options(unique_key="o1", connection=conn).enqueue(1)
        again = await charge.options(unique_key="o1", connection=conn).enqueue(1)
        assert again.duplicate and again.id == first.id  # seen inside the transaction
        assert await conn.fetchval("SELECT 1") == 1
        await tx.rollback()
        after = await charge.options(unique_key="o1").enqueue(1)
        assert not after.duplicate and after.id != first.id
    finally:
        await conn.close()


async def test_a_concurrent_enqueue_waits_for_the_commit_then_is_a_duplicate(
    app: Backburner,
) -> None:
    charge = app.get_task("uq.charge")
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        async with conn.transaction():
            mine = await charge.options(unique_key="o2", connection=conn).enqueue(2)
            other = asyncio.create_task(charge.options(unique_key="o2").enqueue(2))
            # Seen waiting on this transaction's lock by the server itself, rather than
            # "not done after a while" (which a slow start would pass too).
            async with admin() as watcher:
                await eventually(
                    lambda: watcher.fetchval(
                        "SELECT count(*) > 0 FROM pg_stat_activity"
                        " WHERE $1 = ANY(pg_blocking_pids(pid))", conn.get_server_pid()),
                    10, "the other enqueue to wait on the uncommitted holder",
                )
            assert not other.done()
        theirs = await asyncio.wait_for(other, 10)
        assert theirs.duplicate and theirs.id == mine.id
    finally:
        await conn.close()
    rows = await app.list_jobs(task="uq.charge")
    assert [j.id for j in rows.jobs] == [mine.id]
