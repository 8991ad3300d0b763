"""Versioned schema migrations for the PostgreSQL backend.

Every migration runs in one transaction (DDL is transactional in PostgreSQL), under a
transaction-level advisory lock keyed by the schema name: processes that start at once
queue on the lock, and each one after the first finds the work done. Migrations name
their objects `{schema}.x`; the placeholder becomes the backend's quoted schema.
"""

from __future__ import annotations

from typing import Any

from backburner.backends.sql_files import load_migrations
from backburner.errors import ConfigurationError, StoreNotFoundError

MIGRATIONS = load_migrations("backburner.backends.postgres")

_LEDGER = """
CREATE TABLE {schema}.migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def render(script: str, quoted_schema: str) -> str:
    return script.replace("{schema}", quoted_schema)


async def applied_versions(conn: Any, schema: str, quoted_schema: str) -> list[int]:
    ledger = await conn.fetchval(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'migrations'",
        schema,
    )
    if ledger is None:
        return []
    rows = await conn.fetch(f"SELECT version FROM {quoted_schema}.migrations ORDER BY 1")
    return [r[0] for r in rows]


async def check_exists(conn: Any, schema: str, quoted_schema: str) -> None:
    """Raise StoreNotFoundError when the schema holds no Backburner tables (none migrated)."""
    if not await applied_versions(conn, schema, quoted_schema):
        database = await conn.fetchval("SELECT current_database()")
        raise StoreNotFoundError(
            f"no Backburner tables in schema {schema!r} of PostgreSQL database "
            f"{database!r}: check the URL, or run `backburner migrate` to create them"
        )


def is_current(versions: list[int]) -> bool:
    return versions == [v for v, _, _ in MIGRATIONS]


def _check_not_newer(versions: list[int], schema: str) -> None:
    known = MIGRATIONS[-1][0]
    if versions and max(versions) > known:
        # Written by a newer Backburner: running this one against it could corrupt jobs.
        raise ConfigurationError(
            f"schema {schema!r} is at version {max(versions)}, newer than this Backburner "
            f"understands ({known}); upgrade backburner"
        )


async def migrate(conn: Any, schema: str, quoted_schema: str) -> list[int]:
    """Apply what is missing; return the versions applied by this call."""
    versions = await applied_versions(conn, schema, quoted_schema)
    _check_not_newer(versions, schema)
    if is_current(versions):
        return []
    done: list[int] = []
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"backburner.migrate:{schema}",
        )
        # Checked, not CREATE SCHEMA IF NOT EXISTS: that one needs the CREATE privilege on
        # the database even when a DBA created the schema beforehand.
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", schema
        )
        if exists is None:
            await conn.execute(f"CREATE SCHEMA {quoted_schema}")
        ledger = await conn.fetchval(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2",
            schema, "migrations",
        )
        if ledger is None:
            await conn.execute(render(_LEDGER, quoted_schema))
        already = set(await applied_versions(conn, schema, quoted_schema))
        _check_not_newer(sorted(already), schema)
        for version, name, script in MIGRATIONS:
            if version in already:
                continue
            # No arguments: the simple query protocol, which runs a whole script.
            await conn.execute(render(script, quoted_schema))
            await conn.execute(
                f"INSERT INTO {quoted_schema}.migrations (version, name) VALUES ($1, $2)",
                version, name,
            )
            done.append(version)
    return done
