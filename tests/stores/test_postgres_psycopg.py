"""Transactional enqueue on PostgreSQL through psycopg 3: `options(connection=...)` with a
psycopg connection (async and sync), SQLAlchemy on the psycopg dialect (async and sync) and
Django's connection. As with asyncpg (test_postgres_transactions.py): a rollback discards
the job; a commit makes it visible and wakes workers of other processes at that moment;
unique keys and flows go through the same path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from services import POSTGRES_URL
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.postgres import PostgresBackend
from backburner.backends.protocol import NewJob
from backburner.errors import BackendError, BackendUnavailableError
from backburner.notify import Subscription

from .pg_helpers import opened, schema_url

PSYCOPG_URL = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://")


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

        @app.task(name="tx.charge")
        async def charge(order: int) -> None: ...

        await app.open()
        yield app, theirs


@pytest.fixture
async def aconn() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(POSTGRES_URL)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def sconn() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(POSTGRES_URL) as conn:
        yield conn


@pytest.fixture
async def async_engine() -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(PSYCOPG_URL)
    try:
        yield made
    finally:
        await made.dispose()


@pytest.fixture
def sync_engine() -> Iterator[Engine]:
    made = create_engine(PSYCOPG_URL)
    try:
        yield made
    finally:
        made.dispose()


async def _listening(backend: PostgresBackend) -> Subscription:
    sub = backend.notifier.subscribe(["wakeup"])
    await backend._notifier.connected.wait()
    return sub


async def _check_committed(theirs: PostgresBackend, sub: Subscription, job_id: str) -> None:
    assert await sub.wait(5.0), "the commit woke no worker"
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


# -- psycopg connections ---------------------------------------------------------------------
async def test_async_connection_commit_and_rollback(
    pair: tuple[Backburner, PostgresBackend], aconn: psycopg.AsyncConnection[Any],
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    send = app.get_task("tx.send")
    try:
        job = await send.options(connection=aconn).enqueue("a@x.io")
        # Not yet: nobody else sees the job, and no wake-up went out.
        assert await theirs.get(job.id) is None
        await _check_unheard(app, sub, "a wake-up went out before the commit")
        await aconn.commit()
        await _check_committed(theirs, sub, job.id)

        dropped = await send.options(connection=aconn).enqueue("b@x.io")
        await aconn.rollback()
        await _check_discarded(app, theirs, sub, dropped.id)

        # In a transaction block of psycopg's own (the connection in autocommit).
        await aconn.set_autocommit(True)
        with contextlib.suppress(Rollback):
            async with aconn.transaction():
                gone = await send.options(connection=aconn).enqueue("c@x.io")
                raise Rollback
        await _check_discarded(app, theirs, sub, gone.id)
        async with aconn.transaction():
            kept = await send.options(connection=aconn).enqueue("d@x.io")
        await _check_committed(theirs, sub, kept.id)
    finally:
        sub.close()


async def test_sync_connection_commit_and_rollback(
    pair: tuple[Backburner, PostgresBackend], sconn: psycopg.Connection[Any],
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    send = app.get_task("tx.send")
    try:
        sconn.execute("SELECT 1")  # the application's own work first
        job = await send.options(connection=sconn).enqueue("a@x.io")
        assert await theirs.get(job.id) is None
        await _check_unheard(app, sub, "a wake-up went out before the commit")
        sconn.commit()
        await _check_committed(theirs, sub, job.id)

        with contextlib.suppress(Rollback), sconn.transaction():
            dropped = await send.options(connection=sconn).enqueue("b@x.io")
            raise Rollback
        sconn.rollback()
        await _check_discarded(app, theirs, sub, dropped.id)

        # Autocommit: the job commits at once.
        sconn.autocommit = True
        now = await send.options(connection=sconn).enqueue("c@x.io")
        await _check_committed(theirs, sub, now.id)
    finally:
        sub.close()


async def test_a_committed_job_runs_on_a_worker(
    pair: tuple[Backburner, PostgresBackend], sconn: psycopg.Connection[Any],
) -> None:
    app, _ = pair
    with sconn.transaction():
        job = await app.get_task("tx.send").options(connection=sconn).enqueue("a@x.io")
    await app.run_worker(burst=True)
    assert await job.result(timeout=5) == "a@x.io"


# -- SQLAlchemy on psycopg -------------------------------------------------------------------
async def test_sqlalchemy_async_session_and_connection(
    pair: tuple[Backburner, PostgresBackend], async_engine: AsyncEngine,
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    send = app.get_task("tx.send")
    try:
        # A fresh session: the driver's transaction is not open yet when the job goes in.
        async with AsyncSession(async_engine) as session:
            kept = await send.options(connection=session).enqueue("a@x.io")
            assert await theirs.get(kept.id) is None
            await session.commit()
        await _check_committed(theirs, sub, kept.id)

        for own_work_first in (False, True):
            async with AsyncSession(async_engine) as session:
                if own_work_first:
                    await session.execute(text("SELECT 1"))
                dropped = await send.options(connection=session).enqueue("b@x.io")
                await session.rollback()
            await _check_discarded(app, theirs, sub, dropped.id)

        with contextlib.suppress(Rollback):
            async with async_engine.begin() as conn:
                gone = await send.options(connection=conn).enqueue("c@x.io")
                raise Rollback
        await _check_discarded(app, theirs, sub, gone.id)

        # "Commit as you go": a connection without begin() joins the implicit transaction.
        async with async_engine.connect() as conn:
            later = await send.options(connection=conn).enqueue("d@x.io")
            assert await theirs.get(later.id) is None
            await conn.commit()
        await _check_committed(theirs, sub, later.id)
    finally:
        sub.close()


async def test_sqlalchemy_sync_session_and_connection(
    pair: tuple[Backburner, PostgresBackend], sync_engine: Engine,
) -> None:
    app, theirs = pair
    sub = await _listening(theirs)
    send = app.get_task("tx.send")
    try:
        with Session(sync_engine) as session:
            kept = await send.options(connection=session).enqueue("a@x.io")
            assert await theirs.get(kept.id) is None
            session.commit()
        await _check_committed(theirs, sub, kept.id)

        for own_work_first in (False, True):
            with Session(sync_engine) as session:
                if own_work_first:
                    session.execute(text("SELECT 1"))
                dropped = await send.options(connection=session).enqueue("b@x.io")
                session.rollback()
            await _check_discarded(app, theirs, sub, dropped.id)

        with contextlib.suppress(Rollback), sync_engine.begin() as conn:
            gone = await send.options(connection=conn).enqueue("c@x.io")
            raise Rollback
        await _check_discarded(app, theirs, sub, gone.id)

        with sync_engine.connect() as conn:
            later = await send.options(connection=conn).enqueue("d@x.io")
            assert await theirs.get(later.id) is None
            conn.commit()
        await _check_committed(theirs, sub, later.id)

        with Session(sync_engine) as session, session.begin():
            ran = await send.options(connection=session).enqueue("e@x.io")
        await app.run_worker(burst=True)
        assert await ran.result(timeout=5) == "e@x.io"
    finally:
        sub.close()


# -- unique jobs and flows -------------------------------------------------------------------
async def test_unique_rollback_frees_the_key_and_keeps_the_transaction_usable(
    pair: tuple[Backburner, PostgresBackend], aconn: psycopg.AsyncConnection[Any],
    sconn: psycopg.Connection[Any],
) -> None:
    app, _ = pair
    charge = app.get_task("tx.charge")
    # A fresh transaction each time: the savepoint must not be taken for the outer one
    # (that would commit the job behind the application's back).
    first = await charge.options(unique_key="o1", connection=aconn).enqueue(1)
    again = await charge.options(unique_key="o1", connection=aconn).enqueue(1)
    assert again.duplicate and again.id == first.id  # seen inside the transaction
    await (await aconn.execute("SELECT 1")).fetchone()
    await aconn.rollback()
    after = await charge.options(unique_key="o1").enqueue(1)
    assert not after.duplicate and after.id != first.id

    mine = await charge.options(unique_key="o2", connection=sconn).enqueue(2)
    sconn.rollback()
    assert await app.get_job(mine.id) is None
    kept = await charge.options(unique_key="o2", connection=sconn).enqueue(2)
    sconn.commit()
    dup = await charge.options(unique_key="o2", connection=sconn).enqueue(2)
    sconn.commit()
    assert dup.duplicate and dup.id == kept.id

    # In autocommit the unique insert runs in a transaction of its own.
    sconn.autocommit = True
    auto = await charge.options(unique_key="o3", connection=sconn).enqueue(3)
    assert (await app.get_job(auto.id)) is not None


async def test_unique_failure_inside_leaves_the_transaction_usable(
    pair: tuple[Backburner, PostgresBackend], sconn: psycopg.Connection[Any],
) -> None:
    """A statement that fails inside the savepoint is rolled back to it; the application's
    own work before it stays."""
    app, theirs = pair
    charge = app.get_task("tx.charge")
    before = await app.get_task("tx.send").options(connection=sconn).enqueue("a@x.io")
    # An id already taken: insert_unique_jobs fails on the primary key, inside the savepoint.
    job = NewJob(id=before.id, task="tx.charge", queue="default", priority=0, args="[1]",
                 kwargs="{}", max_attempts=1, unique_key="o4")
    with pytest.raises(ConfigurationError, match="duplicate job id"):
        await app.backend.insert([job], connection=sconn)
    after = await charge.options(unique_key="o4", connection=sconn).enqueue(4)
    sconn.commit()
    assert await theirs.get(before.id) is not None and await theirs.get(after.id) is not None


async def test_a_chain_is_stored_in_the_application_transaction(
    pair: tuple[Backburner, PostgresBackend], aconn: psycopg.AsyncConnection[Any],
    sync_engine: Engine,
) -> None:
    app, theirs = pair
    send = app.get_task("tx.send")
    dropped = await app.chain(send.call("a@x.io"), send.call("b@x.io"), connection=aconn)
    await aconn.rollback()
    assert [await theirs.get(j.id) for j in dropped.jobs] == [None, None]
    kept = await app.chain(send.call("a@x.io"), send.call("b@x.io"), connection=aconn)
    assert await theirs.get(kept.jobs[0].id) is None
    await aconn.commit()
    first, second = [await theirs.get(j.id) for j in kept.jobs]
    assert first is not None and first.state is JobState.PENDING
    assert second is not None and second.state is JobState.SCHEDULED
    assert second.depends_on == (first.id,) and second.waiting_on == 1

    # A group on a sync session, its members' timeouts mixing int and float.
    with Session(sync_engine) as session, session.begin():
        group = await app.group(
            [send.options(timeout=30).call("c@x.io"), send.options(timeout=2.5).call("d@x.io")],
            then=send.call("e@x.io"), connection=session,
        )
    records = [await theirs.get(j.id) for j in group.jobs]
    assert [r.timeout if r else None for r in records[:2]] == [30, 2.5]
    await app.run_worker(burst=True)
    assert await kept.jobs[1].result(timeout=5) == "b@x.io"
    assert await group.jobs[-1].result(timeout=5) == "e@x.io"


async def test_mixed_int_and_float_columns_arrive_as_floats(
    pair: tuple[Backburner, PostgresBackend], sconn: psycopg.Connection[Any],
) -> None:
    app, theirs = pair
    jobs = [
        NewJob(id=f"mixed{n}", task="tx.send", queue="default", priority=0, args='["a"]',
               kwargs="{}", max_attempts=1, timeout=timeout, rate_count=5, rate_period=period)
        for n, (timeout, period) in enumerate([(30, 1), (2.5, 0.5), (None, None)])
    ]
    await app.backend.insert(jobs, connection=sconn)
    sconn.commit()
    assert [(await theirs.get(j.id)).timeout for j in jobs] == [30, 2.5, None]  # type: ignore[union-attr]


# -- refusals and errors ---------------------------------------------------------------------
@pytest.mark.parametrize("connection", [object(), "postgresql://x"])
async def test_other_connection_objects_are_refused(
    pair: tuple[Backburner, PostgresBackend], connection: Any,
) -> None:
    app, _ = pair
    with pytest.raises(ConfigurationError, match="psycopg 3 connection"):
        await app.get_task("tx.send").options(connection=connection).enqueue("a@x.io")


async def test_sqlalchemy_on_another_driver_is_refused(
    pair: tuple[Backburner, PostgresBackend], tmp_path: Any,
) -> None:
    app, _ = pair
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with Session(engine) as session, pytest.raises(ConfigurationError, match="underneath"):
            await app.get_task("tx.send").options(connection=session).enqueue("a@x.io")
    finally:
        engine.dispose()


async def test_driver_errors_are_translated(
    pair: tuple[Backburner, PostgresBackend], aconn: psycopg.AsyncConnection[Any],
) -> None:
    app, _ = pair
    send = app.get_task("tx.send")
    with contextlib.suppress(psycopg.errors.DivisionByZero):
        await aconn.execute("SELECT 1/0")
    # The application's transaction failed: PostgreSQL refuses every statement until its end.
    with pytest.raises(BackendError, match="InFailedSqlTransaction"):
        await send.options(connection=aconn).enqueue("a@x.io")
    await aconn.rollback()
    await aconn.close()
    with pytest.raises(BackendUnavailableError, match="connection lost"):
        await send.options(connection=aconn).enqueue("a@x.io")


# -- Django ----------------------------------------------------------------------------------
# Django is configured once per process (settings.configure), so it runs in a child process.
# Its main thread plays a sync view; the enqueue runs on an event loop in another thread,
# as a sync API's portal would run it, while the view's thread waits.
_DJANGO_CHILD = textwrap.dedent("""
    import asyncio, json, os, sys, threading
    from urllib.parse import urlsplit

    import django
    from django.conf import settings

    pg = urlsplit(os.environ["BBT_PG"])
    settings.configure(DATABASES={
        "default": {"ENGINE": "django.db.backends.postgresql", "NAME": pg.path[1:],
                    "USER": pg.username, "PASSWORD": pg.password or "",
                    "HOST": pg.hostname, "PORT": pg.port or 5432},
        "lite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    }, USE_TZ=True)
    django.setup()
    from django.db import connection, connections, transaction

    from backburner import Backburner, ConfigurationError
    from backburner.backends.postgres import PostgresBackend
    from backburner.caller_connection import pinned

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def portal(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    backend = PostgresBackend(os.environ["BBT_URL"])
    app = Backburner(backend=backend)

    @app.task(name="tx.send")
    async def send(to: str) -> str:
        return to

    class Rollback(Exception):
        pass

    portal(app.open())
    out = {}
    with transaction.atomic():
        kept = portal(send.options(connection=connections["default"]).enqueue("a@x.io"))
        out["unseen_before_commit"] = portal(backend.get(kept.id)) is None
    out["kept"] = kept.id
    try:
        with transaction.atomic():
            dropped = portal(send.options(connection=connections["default"]).enqueue("b@x.io"))
            raise Rollback
    except Rollback:
        out["dropped"] = dropped.id
    # django.db.connection (a per-thread proxy) pinned in the owning thread; a unique job
    # in a nested atomic block (a savepoint of Django's) rolled back, the outer one kept.
    with transaction.atomic():
        outer = portal(send.options(connection=pinned(connection)).enqueue("c@x.io"))
        try:
            with transaction.atomic():
                inner = portal(send.options(connection=pinned(connection),
                                            unique_key="k").enqueue("d@x.io"))
                raise Rollback
        except Rollback:
            pass
        flow = portal(app.chain(send.call("e@x.io"), send.call("f@x.io"),
                                connection=connections["default"]))
    out["outer"], out["inner"], out["flow"] = outer.id, inner.id, [j.id for j in flow.jobs]
    # Autocommit, not connected yet: the wrapper connects (in a thread of its own, Django
    # refusing to in the loop's) and the job commits at once.
    connections["default"].close()
    auto = portal(send.options(connection=connections["default"]).enqueue("g@x.io"))
    out["auto_visible"] = portal(backend.get(auto.id)) is not None
    out["auto"] = auto.id
    try:
        portal(send.options(connection=connections["lite"]).enqueue("h@x.io"))
    except ConfigurationError as exc:
        out["lite_refused"] = str(exc)
    portal(app.close())
    print("RESULT " + json.dumps(out), flush=True)
""")


async def test_django_connection_inside_atomic() -> None:
    url, _ = schema_url()
    async with opened(url) as mine, opened(url) as theirs:
        app = Backburner(backend=mine)

        @app.task(name="tx.send")
        async def send(to: str) -> str:
            return to

        await app.open()
        sub = await _listening(theirs)
        try:
            env = {**os.environ, "BBT_PG": POSTGRES_URL, "BBT_URL": url}
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _DJANGO_CHILD, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(child.communicate(), 120)
            printed = output.decode(errors="replace")
            assert child.returncode == 0, printed
            out = json.loads(printed.split("RESULT ", 1)[1])

            assert out["unseen_before_commit"] and out["auto_visible"]
            assert "psycopg 3" in out["lite_refused"]
            for gone in (out["dropped"], out["inner"]):
                assert await theirs.get(gone) is None
            for kept in (out["kept"], out["outer"], out["auto"], *out["flow"]):
                assert await theirs.get(kept) is not None
            # Woken at each commit (kept; outer with the flow; auto), in commit order, and
            # never by the rolled-back blocks. The last events may come in one message.
            woken: list[str] = []
            while len(woken) < 3:
                assert await sub.wait(5.0), f"woken only {len(woken)} times"
                woken += [e.queue for e in sub.drain()]
            assert woken == ["default"] * 3

            await app.run_worker(burst=True)
            assert await app.job(out["flow"][1]).result(timeout=5) == "f@x.io"
            assert await app.job(out["kept"]).result(timeout=5) == "a@x.io"
        finally:
            sub.close()
            await app.close()
