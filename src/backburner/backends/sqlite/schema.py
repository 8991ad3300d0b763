"""Versioned schema migrations for the SQLite backend."""

from __future__ import annotations

import os
import sqlite3
import time
from urllib.parse import quote

from backburner.backends.sql_files import load_migrations
from backburner.backends.sqlite.connection import WriteTransaction
from backburner.errors import StoreNotFoundError

MIGRATIONS = load_migrations("backburner.backends.sqlite")

_LEDGER = """
CREATE TABLE IF NOT EXISTS backburner_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)
"""


def statements(script: str) -> list[str]:
    """Split a script into complete statements (sqlite3 knows where one ends)."""
    found: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                found.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return found


def applied_versions(conn: sqlite3.Connection) -> list[int]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='backburner_migrations'"
    ).fetchone()
    if not exists:
        return []
    return [r[0] for r in conn.execute("SELECT version FROM backburner_migrations ORDER BY 1")]


def check_exists(path: str) -> None:
    """Raise StoreNotFoundError unless `path` is a SQLite file with Backburner's tables.
    Opened read-only, so neither a missing file nor someone else's database is touched."""
    hint = "check the URL, or run `backburner migrate` to create it"
    if not os.path.isfile(path):
        raise StoreNotFoundError(f"no SQLite database at {path}: {hint}")
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        try:
            versions = applied_versions(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreNotFoundError(
            f"{path} is not a SQLite database ({exc}): check the URL") from None
    if not versions:
        raise StoreNotFoundError(f"{path} has no Backburner tables: {hint}")


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply what is missing, all in one write transaction, so two processes starting at
    once cannot both apply a migration: the second waits for the lock, then finds it done."""
    if applied_versions(conn) == [v for v, _, _ in MIGRATIONS]:
        return []
    done: list[int] = []
    with WriteTransaction(conn):
        conn.execute(_LEDGER)
        already = set(applied_versions(conn))
        for version, name, script in MIGRATIONS:
            if version in already:
                continue
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO backburner_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            done.append(version)
    return done


def is_current(conn: sqlite3.Connection) -> bool:
    return applied_versions(conn) == [v for v, _, _ in MIGRATIONS]
