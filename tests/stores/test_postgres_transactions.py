"""Transactional enqueue on PostgreSQL: `task.options(connection=...).enqueue(...)` inside
the application's own transaction, with asyncpg and with SQLAlchemy. A rollback discards the
job; a commit makes it visible and wakes workers of other processes at that moment."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from services import POSTGRES_URL
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.postgres import PostgresBackend
from backburner.notify import Subscription

from .pg_helpers import opened, schema_url


class Rollback(Exception):
    pass


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Backburner, PostgresBackend]]:
    """An app that enqueues, and a second backend on the same schema standing for another
    process's worker."""
    url, _ = schema_url()
    async with opened(url) as mine, opened(url) as theirs:
        app = Backburner(backend=mine)

        @app.task(name="tx.send")
        async def send(to: str) -> str:
            return to

        await app.open()
        yield app, theirs


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        yield made
    finally:
        await made.dispose()


async def _listening(backend: PostgresBackend) -> Subscription:
    sub = backend.notifier.subscribe(["wakeup"])
    await backend._notifier.connected.wait()
    return sub


async def _check_committed(theirs: PostgresBackend, sub: Subscription, job_id: str) -> None:
    assert await sub.wait(2.0), "the commit woke no worker"
    assert [e.queue for e in sub.drain()] == ["default"]
    record = await theirs.get(job_id)
    assert record is not None and record.state is JobState.PENDING


async def _check_discarded(
    app: Backburner, theirs: PostgresBackend, sub: Subscription, job_id: str,
) -> None:
    assert await theirs.get(job_id) is None
    await _check_unheard(app, sub, "a rolled-back enqueue woke a worker")


async def _check_unheard(app: Backburner, sub: Subscription, why: str) -> None:
    """No wake-up reached `sub` so far: one committed now (queue "marker") arrives alone.
    PostgreSQL delivers notifications in commit order, so an earlier one would come first;
    no waiting for something not to happen."""
    await app.get_task("tx.send").options(queue="marker").enqueue("marker@x.io")
    assert await sub.wait(5.0), "the marker woke no worker"
    assert [e.queue for e in sub.drain()] == ["marker"], why


async def test_asyncpg_commit_makes_the_job_visible_and_wakes_workers(
    pair: tuple[Backburner, PostgresBackend],
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        async with conn.transaction():
            job = await app.get_task("tx.send").options(connection=conn).enqueue("a@x.io")
            # Not yet: nobody else sees the job, and no wake-up went out.
            assert await theirs.get(job.id) is None
            await _check_unheard(app, sub, "a wake-up went out before the commit")
        await _check_committed(theirs, sub, job.id)
    finally:
        sub.close()
        await conn.close()


async def test_asyncpg_rollback_discards_the_job(
    pair: tuple[Backburner, PostgresBackend],
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        with contextlib.suppress(Rollback):  # the application's transaction fails
            async with conn.transaction():
                job = await app.get_task("tx.send").options(connection=conn).enqueue("a@x.io")
                raise Rollback
        await _check_discarded(app, theirs, sub, job.id)
    finally:
        sub.close()
        await conn.close()


async def test_asyncpg_pool_connection_is_accepted(
    pair: tuple[Backburner, PostgresBackend],
) -> None:
    app, theirs = pair
    pool = await asyncpg.create_pool(POSTGRES_URL, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            jobs = await app.get_task("tx.send").options(connection=conn).enqueue_many(
                [("a@x.io",), ("b@x.io",)]
            )
        assert all([await theirs.get(j.id) for j in jobs])
    finally:
        await pool.close()


async def test_sqlalchemy_session_commit_and_rollback(
    pair: tuple[Backburner, PostgresBackend], engine: AsyncEngine,
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    send = app.get_task("tx.send")
    try:
        # A fresh session: the driver's transaction is not open yet when the job goes in.
        async with AsyncSession(engine) as session:
            kept = await send.options(connection=session).enqueue("a@x.io")
            assert await theirs.get(kept.id) is None
            await session.commit()
        await _check_committed(theirs, sub, kept.id)

        for own_work_first in (False, True):
            async with AsyncSession(engine) as session:
                if own_work_first:
                    await session.execute(text("SELECT 1"))
                dropped = await send.options(connection=session).enqueue("b@x.io")
                await session.rollback()
            await _check_discarded(app, theirs, sub, dropped.id)
    finally:
        sub.close()


async def test_sqlalchemy_connection_commit_and_rollback(
    pair: tuple[Backburner, PostgresBackend], engine: AsyncEngine,
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    send = app.get_task("tx.send")
    try:
        async with engine.begin() as conn:
            kept = await send.options(connection=conn).enqueue("a@x.io")
        await _check_committed(theirs, sub, kept.id)

        with contextlib.suppress(Rollback):
            async with engine.begin() as conn:
                dropped = await send.options(connection=conn).enqueue("b@x.io")
                raise Rollback
        await _check_discarded(app, theirs, sub, dropped.id)

        # "Commit as you go": a connection without begin() joins the implicit transaction.
        async with engine.connect() as conn:
            later = await send.options(connection=conn).enqueue("c@x.io")
            assert await theirs.get(later.id) is None
            await conn.commit()
        await _check_committed(theirs, sub, later.id)
    finally:
        sub.close()


async def test_a_committed_job_runs_on_a_worker(
    pair: tuple[Backburner, PostgresBackend], engine: AsyncEngine,
) -> None:
    app, _ = pair
    async with AsyncSession(engine) as session, session.begin():
        job = await app.get_task("tx.send").options(connection=session).enqueue("a@x.io")
    await app.run_worker(burst=True)
    assert await job.result(timeout=5) == "a@x.io"


@pytest.mark.parametrize("connection", [object(), "postgresql://x"])
async def test_other_connection_objects_are_refused(
    pair: tuple[Backburner, PostgresBackend], connection: Any,
) -> None:
    app, _ = pair
    with pytest.raises(ConfigurationError, match="asyncpg"):
        await app.get_task("tx.send").options(connection=connection).enqueue("a@x.io")


async def test_a_chain_is_stored_in_the_application_transaction(
    pair: tuple[Backburner, PostgresBackend],
) -> None:
    app, theirs = pair
    send = app.get_task("tx.send")
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        with contextlib.suppress(Rollback):
            async with conn.transaction():
                dropped = await app.chain(send.call("a@x.io"), send.call("b@x.io"),
                                          connection=conn)
                raise Rollback
        assert [await theirs.get(j.id) for j in dropped.jobs] == [None, None]
        async with conn.transaction():
            kept = await app.chain(send.call("a@x.io"), send.call("b@x.io"), connection=conn)
            assert await theirs.get(kept.jobs[0].id) is None
        first, second = [await theirs.get(j.id) for j in kept.jobs]
        assert first is not None and first.state is JobState.PENDING
        assert second is not None and second.state is JobState.SCHEDULED
        assert second.depends_on == (first.id,) and second.waiting_on == 1
    finally:
        await conn.close()
