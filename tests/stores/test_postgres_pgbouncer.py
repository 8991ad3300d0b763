"""PostgreSQL behind PgBouncer in transaction pooling mode (R28): each transaction may run on
another server session, so nothing Backburner does may rely on a session. A PgBouncer of the
test's own (tests/pg_servers.py) sits in front of the shared server with a small server pool,
so that the sessions really are shared: enqueue, claim, complete, migrations, transactional
enqueue, and wake-ups through `listen_url` or by polling. The URL options themselves are
checked first (no server needed). The contract suite runs through PgBouncer as well
(scripts/test.sh)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest
from pg_servers import missing_tools, pgbouncer
from services import IN_CI, POSTGRES_URL, require_service
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends import postgres as postgres_package
from backburner.backends.postgres import PostgresBackend
from backburner.backends.postgres.config import parse_url
from backburner.backends.protocol import JobFilter, NewJob
from backburner.ids import new_job_id

from .pg_helpers import admin, eventually, opened, schema_url


class Rollback(Exception):
    pass


# -- the URL options --------------------------------------------------------------------------


def test_pooler_defaults_to_none_and_listen_goes_to_the_url_itself() -> None:
    config = parse_url("postgresql://u@h:5432/db?schema=s")
    assert config.pooler == "none" and not config.transaction_pooled
    assert config.listen_dsn == config.dsn == "postgresql://u@h:5432/db"


def test_pooler_transaction_without_listen_url_has_no_listen_connection() -> None:
    config = parse_url("postgresql://u@pgbouncer:6432/db?pooler=transaction&sslmode=disable")
    assert config.transaction_pooled and config.listen_dsn is None
    assert config.dsn == "postgresql://u@pgbouncer:6432/db?sslmode=disable"


def test_listen_url_is_taken_percent_encoded() -> None:
    direct = "postgresql://u:p%40ss@db:5432/app?sslmode=require"
    config = parse_url(
        f"postgresql://u@pgbouncer:6432/app?pooler=transaction&listen_url={quote(direct, safe='')}"
    )
    assert config.listen_dsn == direct
    assert "listen_url" not in config.dsn and "pooler" not in config.dsn


def test_session_pooler_changes_nothing() -> None:
    config = parse_url("postgresql://u@h/db?pooler=session")
    assert not config.transaction_pooled and config.listen_dsn == config.dsn


@pytest.mark.parametrize("value", ["statement", "Transaction", "", "pgbouncer"])
def test_unknown_pooler_values_are_refused_naming_the_allowed_ones(value: str) -> None:
    with pytest.raises(ConfigurationError, match="none, session, transaction"):
        parse_url(f"postgresql://u@h/db?pooler={value}")


@pytest.mark.parametrize(("query", "problem"), [
    ("listen_url=postgresql%3A%2F%2Fdb%2Fapp", "only for pooler=transaction"),
    ("pooler=transaction&listen_url=redis%3A%2F%2Fx", "postgresql:// URL"),
    ("pooler=transaction&listen_url=postgresql%3A%2F%2Fdb%2Fapp%3Fschema%3Dx",
     "schema belong"),
])
def test_bad_listen_urls_are_refused(query: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        parse_url(f"postgresql://u@h/db?{query}")


def test_multi_host_urls_pass_to_asyncpg_untouched() -> None:
    config = parse_url(
        "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write&schema=s"
    )
    assert config.dsn == "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write"


# -- through a real PgBouncer -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bouncer_port() -> Iterator[int]:
    require_service(POSTGRES_URL)
    reason = missing_tools()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}: CI must run these tests (.ci/run installs it)")
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    # Two server sessions for everything: consecutive transactions of one client land on
    # different sessions, and a statement prepared on one would be missing on the other.
    with pgbouncer(POSTGRES_URL, pool_size=2) as port:
        yield port


def _through(port: int, url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}").geturl()


@pytest.fixture
def pooled(bouncer_port: int) -> tuple[str, str]:
    """(url through PgBouncer with pooler=transaction, schema)."""
    url, schema = schema_url(pooler="transaction", fallback_poll="0.2")
    return _through(bouncer_port, url), schema


async def test_jobs_run_end_to_end_through_pgbouncer(pooled: tuple[str, str]) -> None:
    url, schema = pooled
    async with opened(url) as backend:
        app = Backburner(backend=backend, poll_interval=0.2)

        @app.task(name="pgb.add")
        async def add(a: int, b: int) -> int:
            return a + b

        await app.open()
        jobs = [await add.enqueue(i, i) for i in range(30)]
        await app.run_worker(burst=True, concurrency=8)
        records = [await backend.get(job.id) for job in jobs]
        assert [r.state if r else None for r in records] == [JobState.COMPLETED] * 30
        assert [r.result if r else None for r in records] == [2 * i for i in range(30)]
        # The statements found their way without prepared statements: none is left on the
        # server under asyncpg's names.
        async with admin() as conn:
            assert not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity a WHERE application_name LIKE $1 "
                "AND query LIKE 'PREPARE%'", f"backburner:{schema}%",
            )


async def test_asyncpg_learns_types_only_inside_a_transaction(
    pooled: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncpg's type lookup sets `jit` for the session and back: outside a transaction the
    pooler may run those on different server sessions and leave one changed. Every lookup
    of a full run happens inside one (connections.prepare_connection learns the arrays)."""
    outside: list[list[int]] = []
    real = asyncpg.Connection._introspect_types

    async def spy(self: Any, oids: Any, timeout: Any) -> Any:
        if not self.is_in_transaction():
            outside.append(sorted(oids))
        return await real(self, oids, timeout)

    monkeypatch.setattr(asyncpg.Connection, "_introspect_types", spy)
    url, _ = pooled
    async with opened(url) as backend:
        app = Backburner(backend=backend, poll_interval=0.2)

        @app.task(name="pgb.mul", retries=1)
        async def mul(a: int, b: int) -> int:
            if a == 3:
                raise ValueError("fails once, retried")
            return a * b

        await app.open()
        for i in range(6):
            await mul.options(unique_key=f"k{i}").enqueue(i, 2)
        await app.run_worker(burst=True)
        assert sum((await backend.counts()).values()) == 6
        await backend.list_jobs(JobFilter(search="pgb"))
    assert outside == [], f"type lookups outside a transaction: {outside}"


def test_no_session_state_in_the_sql() -> None:
    """What a transaction pooler cannot carry from one transaction to the next: session
    advisory locks, session-level settings, named prepared statements, temporary tables,
    cursors held past their transaction. Looked for in the SQL files (comments left out)
    and in the string literals of the package's modules (docstrings left out)."""
    root = Path(postgres_package.__file__).parent
    texts = {
        path.name: re.sub(r"--[^\n]*", "", path.read_text())
        for path in [*root.glob("*.sql"), *root.glob("migrations/*.sql")]
    }
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.value) for node in ast.walk(tree)
                      if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
        texts[path.name] = "\n".join(
            node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings
        )
    forbidden = re.compile(
        r"pg_(try_)?advisory_lock(_shared)?\(|pg_advisory_unlock|set_config\([^)]*,\s*false\)"
        r"|\bPREPARE\s+\w+\s+AS\b|CREATE\s+TEMP|WITH\s+HOLD|\bSET\s+SESSION\b",
        re.IGNORECASE,
    )
    found = {name: [m.group(0) for m in forbidden.finditer(text)]
             for name, text in texts.items()}
    assert {name: hits for name, hits in found.items() if hits} == {}
    assert len(texts) > 10  # the files were found


async def test_migrations_run_through_pgbouncer_by_several_processes_at_once(
    pooled: tuple[str, str],
) -> None:
    url, _ = pooled
    backends = [PostgresBackend(url) for _ in range(3)]
    try:
        # Concurrent migrations queue on a transaction-level advisory lock: a session-level
        # one would be taken on one server session and released (or not) on another.
        await asyncio.gather(*(b.open() for b in backends))
        assert await backends[0].migrate() == []
        closed = PostgresBackend(url)
        assert await closed.migrate() == []  # its own connection, also through PgBouncer
    finally:
        await backends[0].destroy()
        for backend in backends:
            await backend.close()


async def test_transactional_enqueue_on_a_pgbouncer_connection(pooled: tuple[str, str]) -> None:
    url, _ = pooled
    dsn = urlsplit(url)._replace(query="").geturl()
    async with opened(url) as backend:
        app = Backburner(backend=backend)

        @app.task(name="pgb.send")
        async def send(to: str) -> str:
            return to

        await app.open()
        # The application's own connection through PgBouncer needs asyncpg's statement cache
        # off too (as any asyncpg connection behind a transaction pooler).
        conn = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            async with conn.transaction():
                kept = await send.options(connection=conn).enqueue("a@x.io")
            dropped = None
            with contextlib.suppress(Rollback):  # the application's transaction fails
                async with conn.transaction():
                    dropped = await send.options(connection=conn).enqueue("b@x.io")
                    raise Rollback
        finally:
            await conn.close()
        record = await backend.get(kept.id)
        assert record is not None and record.state is JobState.PENDING
        assert dropped is not None and await backend.get(dropped.id) is None


async def test_transactional_enqueue_on_a_sqlalchemy_session_through_pgbouncer(
    pooled: tuple[str, str],
) -> None:
    """SQLAlchemy's asyncpg dialect behind a transaction pooler, set up as docs/
    postgresql-in-production.md says: no statement caches (asyncpg 0.31 and later then
    prepares SQLAlchemy's statements unnamed, too)."""
    url, _ = pooled
    dsn = urlsplit(url)._replace(query="", scheme="postgresql+asyncpg").geturl()
    engine = create_async_engine(
        f"{dsn}?prepared_statement_cache_size=0",
        connect_args={"statement_cache_size": 0},
    )
    try:
        async with opened(url) as backend:
            app = Backburner(backend=backend)

            @app.task(name="pgb.notify")
            async def notify(to: str) -> str:
                return to

            await app.open()
            kept = []
            # Two client connections at once, taking turns on the pooler's server sessions:
            # a statement one of them left prepared on a session would clash with (or be
            # missing for) the other.
            async with AsyncSession(engine) as first, AsyncSession(engine) as second:
                for turn in range(6):
                    session = (first, second)[turn % 2]
                    async with session.begin():
                        await session.execute(text("SELECT CAST(:n AS int)"), {"n": turn})
                        kept.append(await notify.options(connection=session).enqueue("a@x"))
            dropped = None
            with contextlib.suppress(Rollback):
                async with AsyncSession(engine) as session, session.begin():
                    dropped = await notify.options(connection=session).enqueue("b@x.io")
                    raise Rollback
            for job in kept:
                record = await backend.get(job.id)
                assert record is not None and record.state is JobState.PENDING
            assert dropped is not None and await backend.get(dropped.id) is None
    finally:
        await engine.dispose()


async def test_without_listen_url_wakeups_are_polled_and_said_once(
    pooled: tuple[str, str], caplog: pytest.LogCaptureFixture,
) -> None:
    url, schema = pooled
    caplog.set_level(logging.WARNING, "backburner.notify")
    async with opened(url) as sender, opened(url) as worker_side:
        with worker_side.notifier.subscribe(["wakeup"]) as sub, \
                worker_side.notifier.subscribe(["cancel"]):
            said = [r for r in caplog.records if "without listen_url" in r.getMessage()]
            assert len(said) == 1, "the polling fallback is said once per notifier"
            await sender.insert([_new_job()])
            # No notification can come (there is no LISTEN session): the poll says "re-read".
            assert await sub.wait(5.0) and sub.overflowed
            assert not worker_side._notifier.connected.is_set()
        assert all(not name.endswith(":listen") for name in await _names(schema))


async def test_listen_url_wakes_workers_directly(bouncer_port: int) -> None:
    direct, schema = schema_url(fallback_poll="30")
    base = urlsplit(direct)._replace(query="").geturl()
    url = _through(bouncer_port, direct) + "&pooler=transaction&listen_url=" + quote(
        base, safe="")
    async with opened(url) as sender, opened(url) as worker_side:
        with worker_side.notifier.subscribe(["wakeup"]) as sub:
            await asyncio.wait_for(worker_side._notifier.connected.wait(), 10)
            assert f"backburner:{schema}:listen" in await _names(schema)
            await sender.insert([_new_job()])
            # With a 30 s fallback poll, only the NOTIFY (sent through PgBouncer by the
            # insert's own statement, heard on the direct session) can be this quick.
            assert await sub.wait(5.0) and not sub.overflowed
            assert [e.queue for e in sub.drain()] == ["default"]


async def test_no_server_session_is_pinned_by_an_idle_backend(pooled: tuple[str, str]) -> None:
    """With two server sessions and four clients, everything still runs: no client holds
    a server session between its transactions (a session-level lock, a LISTEN or an open
    transaction would pin one)."""
    url, _ = pooled
    async with opened(url) as first:
        others = [PostgresBackend(url) for _ in range(3)]
        try:
            for other in others:
                await other.open()
            for backend in (first, *others):
                await backend.insert([_new_job()])

            async def total() -> bool:
                return sum((await first.counts()).values()) == 4

            await eventually(total, 10, "four jobs to be visible")
        finally:
            for other in others:
                await other.close()


async def _names(schema: str) -> set[str]:
    async with admin() as conn:
        rows = await conn.fetch(
            "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1",
            f"backburner:{schema}%",
        )
    return {r[0] for r in rows}


def _new_job() -> NewJob:
    return NewJob(id=new_job_id(), task="t", queue="default", priority=0, args="[]",
                  kwargs="{}", max_attempts=1)
