"""PostgreSQL schema: migrations build exactly schema.sql, concurrent openers migrate once,
`?schema=` keeps apps apart, the URL's own options never reach the server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends import open_backend
from backburner.backends.postgres import PostgresBackend
from backburner.backends.postgres.config import parse_url
from backburner.backends.postgres.schema import MIGRATIONS, render
from backburner.backends.protocol import NewJob
from backburner.ids import new_job_id

from .pg_helpers import admin, opened, schema_url

SCHEMA_SQL = Path(__file__).parents[2] / "src/backburner/backends/postgres/schema.sql"
VERSIONS = [v for v, _, _ in MIGRATIONS]


async def catalog(conn: Any, schema: str) -> dict[str, set[tuple[Any, ...]]]:
    """Everything the catalog says about the tables of `schema` except the ledger, with
    the schema's own name taken out so two schemas compare."""

    def plain(text: str | None) -> str | None:
        return None if text is None else text.replace(f"{schema}.", "S.")

    relations = await conn.fetch(
        "SELECT c.relname, c.relkind, c.reloptions FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", schema,
    )
    columns = await conn.fetch(
        "SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
        "a.attnotnull, a.attidentity, pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped", schema,
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", schema
    )
    constraints = await conn.fetch(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1", schema,
    )
    ledger = ("migrations", "migrations_pkey")
    return {
        "relations": {(r[0], r[1], tuple(r[2] or ())) for r in relations if r[0] not in ledger},
        "columns": {(*r[:6], plain(r[6])) for r in columns if r[0] not in ledger},
        "indexes": {(r[0], plain(r[1])) for r in indexes if r[0] not in ledger},
        "constraints": {(r[0], r[1], plain(r[2])) for r in constraints if r[0] not in ledger},
    }


async def test_migrations_produce_exactly_the_documented_schema() -> None:
    url, migrated = schema_url()
    reference = migrated + "_ref"
    async with opened(url), admin() as conn:
        await conn.execute(f'CREATE SCHEMA "{reference}"')
        try:
            await conn.execute(render(SCHEMA_SQL.read_text(), f'"{reference}"'))
            expected = await catalog(conn, reference)
            actual = await catalog(conn, migrated)
        finally:
            await conn.execute(f'DROP SCHEMA "{reference}" CASCADE')
        versions = await conn.fetch(f'SELECT version FROM "{migrated}".migrations ORDER BY 1')
    assert all(actual.values()), actual  # the dump sees something of every kind
    assert actual == expected
    assert [r[0] for r in versions] == VERSIONS


async def test_concurrent_opens_apply_migrations_once() -> None:
    url, schema = schema_url()
    backends = [PostgresBackend(url) for _ in range(5)]
    try:
        await asyncio.gather(*(b.open() for b in backends))
        async with admin() as conn:
            rows = await conn.fetch(f'SELECT version FROM "{schema}".migrations')
        assert [r[0] for r in rows] == [v for v, _, _ in MIGRATIONS]
        assert await backends[0].migrate() == []
    finally:
        await backends[0].destroy()
        for b in backends:
            await b.close()


async def test_migrate_works_on_a_closed_backend_like_the_cli() -> None:
    url, _ = schema_url()
    backend = PostgresBackend(url)
    try:
        assert await backend.migrate() == [v for v, _, _ in MIGRATIONS]
        assert await backend.migrate() == []
    finally:
        await backend.destroy()
        await backend.close()


def test_backburner_migrate_on_the_command_line() -> None:
    url, _ = schema_url()
    command = [sys.executable, "-m", "backburner", "migrate", "--url", url]
    try:
        first = subprocess.run(command, capture_output=True, text=True, timeout=60)
        again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        asyncio.run(_drop(url))
    assert first.returncode == 0, first.stderr
    assert f"applied migrations: {[v for v, _, _ in MIGRATIONS]}" in first.stdout
    assert again.returncode == 0 and "up to date" in again.stdout


async def _drop(url: str) -> None:
    backend = PostgresBackend(url)
    await backend.destroy()
    await backend.close()


async def test_a_schema_newer_than_this_code_is_refused() -> None:
    url, schema = schema_url()
    async with opened(url), admin() as conn:
        await conn.execute(
            f"INSERT INTO \"{schema}\".migrations (version, name) VALUES (99, 'future')"
        )
        newcomer = PostgresBackend(url)
        with pytest.raises(ConfigurationError, match="newer"):
            await newcomer.open()
        await newcomer.close()


def _job(queue: str = "default") -> NewJob:
    return NewJob(
        id=new_job_id(), task="t", queue=queue, priority=0, args="[]", kwargs="{}",
        max_attempts=1,
    )


async def test_schemas_keep_apps_sharing_a_database_apart() -> None:
    url_a, schema_a = schema_url()
    url_b, _ = schema_url()
    async with opened(url_a) as a, opened(url_b) as b, opened(url_b) as b_too:
        job = _job()
        with b.notifier.subscribe(["wakeup"]) as heard_by_b:
            await b._notifier.connected.wait()
            await a.insert([job])
            assert await a.get(job.id) is not None
            assert await b.get(job.id) is None
            assert (await b.claim("w", ["default"], 10, 30)).jobs == []
            assert await b.counts() == {}
            assert await a.counts() == {("default", JobState.PENDING): 1}
            # Wake-ups travel on the schema's own channel: one sent on b's afterwards (by
            # another instance: b skips its own) arrives alone, as PostgreSQL delivers
            # notifications in commit order.
            await b_too.insert([_job("marker")])
            assert await heard_by_b.wait(5.0)
            assert [e.queue for e in heard_by_b.drain()] == ["marker"]
        assert await a.lead("w1", 30) and await b.lead("w2", 30)
        async with admin() as conn:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema_a
            )
        assert [t[0] for t in tables] == [
            "job_count_deltas", "job_counts", "jobs", "leader", "migrations", "queues",
            "rate_starts", "schedules", "workers",
        ]


async def test_destroy_drops_the_schema() -> None:
    url, schema = schema_url()
    backend = PostgresBackend(url)
    await backend.open()
    await backend.insert([_job()])
    await backend.destroy()
    await backend.close()
    async with admin() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema
        ) == 0


async def test_a_schema_name_that_needs_quoting_works() -> None:
    url, schema = schema_url()
    odd = f"{schema}-Odd"
    async with opened(url.replace(schema, odd)) as backend:
        app = Backburner(backend=backend)

        @app.task
        async def double(x: int) -> int:
            return 2 * x

        job = await double.enqueue(21)
        await app.run_worker(burst=True)
        assert await job.result(timeout=5) == 42


def test_url_options_are_kept_from_the_server() -> None:
    config = parse_url(
        "postgresql://u:p@h:5433/db?schema=jobs&pool_size=3&sslmode=disable&fallback_poll=0.5"
    )
    assert config.schema == "jobs" and config.pool_size == 3 and config.fallback_poll == 0.5
    assert config.dsn == "postgresql://u:p@h:5433/db?sslmode=disable"
    assert parse_url("postgres://h/db").schema == "backburner"
    assert isinstance(open_backend("postgres://h/db"), PostgresBackend)


@pytest.mark.parametrize(
    "query",
    ["schema=", "schema=pg_x", "schema=" + "x" * 64, "pool_size=0", "pool_size=x",
     "command_timeout=0", "fallback_poll=-1"],
)
def test_bad_url_options_are_configuration_errors(query: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_url(f"postgresql://h/db?{query}")


def test_channel_names_fit_postgres_identifiers() -> None:
    long = parse_url("postgresql://h/db?schema=" + "s" * 63)
    names = {long.channel(k) for k in ("wakeup", "cancel", "job")}
    assert len(names) == 3 and all(len(n) <= 63 for n in names)
