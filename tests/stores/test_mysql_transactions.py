"""Transactional enqueue on MySQL/MariaDB: `task.options(connection=...).enqueue(...)` inside
the application's own transaction, with an asyncmy connection and with SQLAlchemy's asyncmy
dialect. A rollback discards the job; a commit makes it visible to every worker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import pytest
from services import MYSQL_URL, require_service
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.mysql import MySQLBackend


class Rollback(Exception):
    pass


def _database_url() -> str:
    require_service(MYSQL_URL)
    return f"{MYSQL_URL.rstrip('/')}/bbt_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def app() -> AsyncIterator[Backburner]:
    backend = MySQLBackend(_database_url())
    application = Backburner(backend=backend)

    @application.task(name="tx.send")
    async def send(to: str) -> str:
        return to

    await application.open()
    try:
        yield application
    finally:
        await backend.destroy()
        await application.close()


def _connect_options(charset: str = "utf8mb4") -> dict[str, Any]:
    parts = urlsplit(MYSQL_URL)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": parts.username, "password": parts.password or "", "charset": charset}


@contextlib.asynccontextmanager
async def connection(**options: Any) -> AsyncIterator[Any]:
    conn = await asyncmy.connect(**{**_connect_options(), **options})
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    parts = urlsplit(MYSQL_URL)
    made = create_async_engine(
        f"mysql+asyncmy://{parts.netloc}/?charset=utf8mb4"
    )
    try:
        yield made
    finally:
        await made.dispose()


async def test_a_committed_enqueue_is_stored_and_a_rolled_back_one_is_not(
    app: Backburner,
) -> None:
    send = app.get_task("tx.send")
    async with connection() as conn:
        await conn.begin()
        kept = await send.options(connection=conn).enqueue("kept")
        # Not visible outside the transaction before it commits.
        assert await app.get_job(kept.id) is None
        await conn.commit()
        await conn.begin()
        dropped = await send.options(connection=conn).enqueue("dropped")
        await conn.rollback()
    record = await app.get_job(kept.id)
    assert record is not None and record.state is JobState.PENDING
    assert [*record.args, *record.kwargs.values()] == ["kept"]
    assert await app.get_job(dropped.id) is None
    await app.run_worker(burst=True)
    assert await kept.result(timeout=5) == "kept"


async def test_unique_keys_and_batches_inside_the_transaction(app: Backburner) -> None:
    send = app.get_task("tx.send")
    async with connection() as conn:
        await conn.begin()
        first = await send.options(connection=conn, unique_key="k").enqueue("a")
        again = await send.options(connection=conn, unique_key="k").enqueue("b")
        batch = await send.options(connection=conn).enqueue_many([("x",), ("y",)])
        await conn.commit()
    assert again.id == first.id and again.duplicate
    stored = {j.id for j in (await app.list_jobs(limit=10)).jobs}
    assert stored == {first.id, *(j.id for j in batch)}


async def test_sqlalchemy_session_on_asyncmy(app: Backburner, engine: AsyncEngine) -> None:
    send = app.get_task("tx.send")
    async with AsyncSession(engine) as session:
        async with session.begin():
            await session.execute(text("SELECT 1"))
            kept = await send.options(connection=session).enqueue("kept")
        with contextlib.suppress(Rollback):
            async with session.begin():
                dropped = await send.options(connection=session).enqueue("dropped")
                raise Rollback
    assert await app.get_job(kept.id) is not None
    assert await app.get_job(dropped.id) is None
    async with engine.connect() as conn, conn.begin():
        in_conn = await send.options(connection=conn).enqueue("conn")
    assert await app.get_job(in_conn.id) is not None


async def test_other_objects_and_charsets_are_refused(app: Backburner) -> None:
    send = app.get_task("tx.send")
    with pytest.raises(ConfigurationError, match="asyncmy"):
        await send.options(connection=object()).enqueue("x")
    async with connection(charset="latin1") as conn:
        with pytest.raises(ConfigurationError, match="utf8mb4"):
            await send.options(connection=conn).enqueue("x")
