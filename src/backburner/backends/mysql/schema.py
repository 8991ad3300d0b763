"""Versioned schema migrations for the MySQL/MariaDB backend.

MySQL's DDL is not transactional, so migrations are serialized another way: under a named
lock of the server (`GET_LOCK`, held by the migrating session), processes that start at once
queue on the lock, and each one after the first finds the work done. Each migration is
recorded in `backburner_migrations` once all its statements ran. Migrations name their
tables `{db}.backburner_x` and text collations `{collation}`, rendered per server.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from backburner.backends.mysql import connections, errors
from backburner.backends.mysql.config import MySQLConfig
from backburner.backends.mysql.connections import Session
from backburner.backends.sql_files import load_migrations
from backburner.errors import BackendUnavailableError, ConfigurationError, StoreNotFoundError

MIGRATIONS = load_migrations("backburner.backends.mysql")
LOCK_WAIT = 60
"""Seconds a process waits for another one's migration before it gives up."""

_LEDGER = """
CREATE TABLE IF NOT EXISTS {db}.backburner_migrations (
    version    INT          NOT NULL PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    applied_at DOUBLE       NOT NULL
) ENGINE = InnoDB
"""
_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)


def collation(version: str) -> str:
    """The binary, no-pad utf8mb4 collation of the server: names compare exactly, trailing
    spaces included (a PAD SPACE collation would take 'k' and 'k ' for one key)."""
    return "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"


def render(script: str, config: MySQLConfig, server_version: str = "") -> str:
    return script.replace("{db}", config.quoted_database).replace(
        "{collation}", collation(server_version)
    )


def statements(script: str) -> list[str]:
    """A migration's statements (each ends with a semicolon at the end of a line)."""
    found = []
    for part in _STATEMENT_END.split(script):
        lines = [ln for ln in part.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        if lines:
            found.append(part.strip())
    return found


async def applied_versions(session: Session, config: MySQLConfig) -> list[int] | None:
    """The versions applied; None when the database has no Backburner tables."""
    found = await session.rows(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = 'backburner_migrations'", (config.database,),
    )
    if not found:
        return None
    rows = await session.rows(
        f"SELECT version FROM {config.quoted_database}.backburner_migrations ORDER BY 1"
    )
    return [int(r["version"]) for r in rows]


def _check_not_newer(versions: list[int], config: MySQLConfig) -> None:
    known = MIGRATIONS[-1][0]
    if versions and max(versions) > known:
        # Written by a newer Backburner: running this one against it could corrupt jobs.
        raise ConfigurationError(
            f"database {config.database!r} is at version {max(versions)}, newer than this "
            f"Backburner understands ({known}); upgrade backburner"
        )


async def migrate(config: MySQLConfig, *, create: bool = True) -> list[int]:
    """Apply what is missing; return the versions applied by this call. `create=False`:
    raise StoreNotFoundError instead when the database holds no Backburner tables."""
    conn = await connections.connect(config)
    try:
        session = Session(conn)
        versions = await applied_versions(session, config)
        if versions is None and not create:
            raise StoreNotFoundError(
                f"no Backburner tables in MySQL database {config.database!r} at "
                f"{config.identity}: check the URL, or run `backburner migrate` to create them"
            )
        _check_not_newer(versions or [], config)
        if versions == [v for v, _, _ in MIGRATIONS]:
            return []
        (got,) = await session.rows("SELECT GET_LOCK(%s, %s) AS got", (config.lock_name, LOCK_WAIT))
        if got["got"] != 1:
            raise BackendUnavailableError(
                f"another process has been migrating {config.identity} for {LOCK_WAIT} s"
            )
        try:
            return await _apply(session, config)
        finally:
            # A connection that failed meanwhile is closed below, which releases the lock.
            with contextlib.suppress(*errors.TRANSLATED):
                await session.rows("SELECT RELEASE_LOCK(%s) AS released", (config.lock_name,))
    finally:
        await _close(conn)


async def _apply(session: Session, config: MySQLConfig) -> list[int]:
    (server,) = await session.rows(
        "SELECT VERSION() AS version, (SELECT COUNT(*) FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = %s) AS found", (config.database,),
    )
    version = str(server["version"])
    if not server["found"]:
        # Checked, not CREATE DATABASE IF NOT EXISTS: that one needs the CREATE privilege
        # even when a DBA created the database beforehand.
        await session.rows(render(
            "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE {collation}", config, version
        ))
    await session.rows(render(_LEDGER, config, version))
    already = set(await applied_versions(session, config) or [])
    _check_not_newer(sorted(already), config)
    done: list[int] = []
    for number, name, script in MIGRATIONS:
        if number in already:
            continue
        for statement in statements(render(script, config, version)):
            await session.rows(statement)
        await session.rows(
            f"INSERT INTO {config.quoted_database}.backburner_migrations "
            "(version, name, applied_at) VALUES (%s, %s, UNIX_TIMESTAMP(NOW(6)))",
            (number, name),
        )
        done.append(number)
    return done


async def _close(conn: Any) -> None:
    try:
        await conn.ensure_closed()
    except Exception:
        conn.close()
