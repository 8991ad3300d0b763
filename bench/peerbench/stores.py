"""The stores every system shares, and their reset between scenarios (every scenario starts
from an empty queue)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import redis

from peerbench.adapter import StoreKind

# Database 14 of the shared Redis: flushed between scenarios. Never 0 (default) or 15.
REDIS_DB = 14
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
# One schema per system, dropped and recreated between scenarios.
PG_SCHEMAS = ("bench_backburner", "bench_procrastinate")
STORE_TIMEOUT = 60.0


class Store(ABC):
    kind: StoreKind

    @abstractmethod
    def reset(self) -> None:
        """Empty the store: no jobs, no results, no schema left from the previous scenario."""

    @abstractmethod
    def env(self) -> dict[str, str]:
        """Environment variables the bench/peers modules read to find the store."""

    @abstractmethod
    def version(self) -> str: ...

    def close(self) -> None:
        return None


class RedisStore(Store):
    kind: StoreKind = "redis"

    def __init__(self) -> None:
        # Time limits here too: a server that stops answering must fail the run, not hang it.
        self.client = redis.Redis.from_url(REDIS_URL, socket_timeout=STORE_TIMEOUT,
                                           socket_connect_timeout=STORE_TIMEOUT)

    def reset(self) -> None:
        assert self.client.connection_pool.connection_kwargs["db"] == REDIS_DB
        self.client.flushdb()

    def env(self) -> dict[str, str]:
        return {"BENCH_REDIS_URL": REDIS_URL, "BENCH_BB_URL": f"{REDIS_URL}?prefix=bench"}

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])

    def close(self) -> None:
        self.client.close()


class PostgresStore(Store):
    kind: StoreKind = "postgresql"

    def reset(self) -> None:
        statements = [f"DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s};"
                      for s in PG_SCHEMAS]
        asyncio.run(_execute(" ".join(statements)))

    def env(self) -> dict[str, str]:
        return {"BENCH_PG_DSN": PG_DSN, "BENCH_PG_SCHEMA": "bench_procrastinate",
                "BENCH_BB_URL": f"{PG_DSN}?schema=bench_backburner"}

    def version(self) -> str:
        return str(asyncio.run(_fetchval("SHOW server_version")))


class SqliteStore(Store):
    """A fresh database file in a new temporary directory for every scenario."""

    kind: StoreKind = "sqlite"

    def __init__(self) -> None:
        self.directory: Path | None = None

    def reset(self) -> None:
        self.close()
        self.directory = Path(tempfile.mkdtemp(prefix="bb-peers-"))

    def env(self) -> dict[str, str]:
        assert self.directory is not None, "reset() first"
        return {"BENCH_BB_URL": f"sqlite:///{self.directory / 'jobs.db'}"}

    def version(self) -> str:
        import sqlite3

        return sqlite3.sqlite_version

    def close(self) -> None:
        if self.directory is not None:
            _remove_socket_directory(self.directory / "jobs.db")
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _remove_socket_directory(db: Path) -> None:
    try:
        from backburner.backends.sqlite.datagrams import socket_directory
    except ImportError:  # the layout moved; a leftover empty directory is harmless
        return
    shutil.rmtree(socket_directory(str(db)), ignore_errors=True)


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=STORE_TIMEOUT)
    try:
        # A DROP SCHEMA waits for the locks of sessions still open on its tables.
        await conn.execute(sql, timeout=STORE_TIMEOUT)
    finally:
        await conn.close()


async def _fetchval(sql: str) -> object:
    conn = await asyncpg.connect(PG_DSN, timeout=STORE_TIMEOUT)
    try:
        return await conn.fetchval(sql, timeout=STORE_TIMEOUT)
    finally:
        await conn.close()


def make_store(kind: StoreKind) -> Store:
    if kind == "redis":
        return RedisStore()
    if kind == "postgresql":
        return PostgresStore()
    return SqliteStore()
