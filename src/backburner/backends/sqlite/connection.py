"""One SQLite connection per process, used from one dedicated thread.

Why a thread: a statement may wait on another process's write lock or on fsync; on the event
loop that would stall every coroutine. One thread (not a pool) because SQLite admits one
writer at a time anyway, and a single connection keeps statements cached.

Why check the pid on every call: a connection (and the thread that owns it) must never be
used across `fork`. A child that inherits one opens its own and never touches, or closes, the
parent's.

Busy handling: SQLite's busy handler waits up to `busy_timeout` inside a statement; past
that, the call is retried with backoff until `max_wait`, and only then does a caller see
`BackendUnavailableError`. "database is locked" never reaches a caller or a job outcome.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from backburner.errors import BackendError, BackendUnavailableError, ConfigurationError

log = logging.getLogger("backburner.sqlite")

T = TypeVar("T")

_TRANSIENT = ("database is locked", "database is busy", "database table is locked")
_UNAVAILABLE = (
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
    "unable to open database",
    "disk full",
)

SYNCHRONOUS_LEVELS = ("off", "normal", "full", "extra")


class SQLiteConnection:
    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "normal",
        busy_timeout: float = 5.0,
        max_wait: float = 30.0,
    ) -> None:
        if synchronous.lower() not in SYNCHRONOUS_LEVELS:
            raise ConfigurationError(
                f"synchronous must be one of {SYNCHRONOUS_LEVELS}, got {synchronous!r}"
            )
        self.path = path
        self.synchronous = synchronous.lower()
        self.busy_timeout = busy_timeout
        self.max_wait = max_wait
        self._pid = -1
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # Connections inherited over fork are kept referenced so they are never closed here.
        self._inherited: list[sqlite3.Connection] = []

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor_for_this_process()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._call_with_retries, fn, args)

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """For synchronous callers (CLI). Same thread, same guarantees."""
        return self._executor_for_this_process().submit(
            self._call_with_retries, fn, args
        ).result()

    async def close(self) -> None:
        if self._pid != os.getpid() or self._executor is None:
            return
        executor = self._executor
        conn = self._conn
        self._executor = None
        self._conn = None

        def _close() -> None:
            if conn is not None:
                conn.close()

        await asyncio.get_running_loop().run_in_executor(executor, _close)
        executor.shutdown(wait=True)

    # -- internals -------------------------------------------------------------------------
    def _executor_for_this_process(self) -> ThreadPoolExecutor:
        if self._pid != os.getpid():
            if self._conn is not None:
                self._inherited.append(self._conn)
            self._conn = None
            self._executor = None
            self._pid = os.getpid()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="backburner-sqlite")
        return self._executor

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,
                cached_statements=256,
            )
        except sqlite3.OperationalError as exc:
            raise BackendUnavailableError(
                f"cannot open SQLite database {self.path}: {exc}"
            ) from exc
        conn.row_factory = sqlite3.Row
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise ConfigurationError(
                f"{self.path}: SQLite refused WAL mode (got {mode!r}); Backburner needs WAL "
                "so readers never block the writer. Is the file on a network filesystem?"
            )
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # Bound the WAL file left after a checkpoint, so a busy dashboard cannot grow it.
        conn.execute("PRAGMA journal_size_limit=67108864")
        conn.execute("PRAGMA temp_store=MEMORY")
        self._conn = conn
        return conn

    def _call_with_retries(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        deadline = time.monotonic() + self.max_wait
        delay = 0.002
        while True:
            conn = self._connect()
            try:
                return fn(conn, *args)
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.rollback()
                message = str(exc).lower()
                if any(t in message for t in _TRANSIENT):
                    if time.monotonic() < deadline:
                        time.sleep(delay)
                        delay = min(delay * 2, 0.25)
                        continue
                    raise BackendUnavailableError(
                        f"SQLite database {self.path} stayed locked for {self.max_wait:.0f}s"
                    ) from exc
                if any(u in message for u in _UNAVAILABLE):
                    raise BackendUnavailableError(f"SQLite database {self.path}: {exc}") from exc
                raise BackendError(f"SQLite database {self.path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.rollback()
                message = str(exc).lower()
                if any(u in message for u in _UNAVAILABLE):
                    raise BackendUnavailableError(f"SQLite database {self.path}: {exc}") from exc
                raise BackendError(f"SQLite database {self.path}: {exc}") from exc
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise


class WriteTransaction:
    """`with WriteTransaction(conn):` takes the write lock up front (BEGIN IMMEDIATE), so a
    transaction never has to upgrade a read lock, which in WAL mode fails without waiting."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.rollback()
