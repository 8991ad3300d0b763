"""How the SQLite backend talks to its file: a fast path on the event loop, a patient path on
a dedicated thread.

Why two paths: handing a statement to a thread and back costs ~100 µs here (thread wake-up and
the GIL), five times a short transaction. So each call first runs on the loop thread, on a
connection that never waits: `busy_timeout=0` makes BEGIN IMMEDIATE fail at once when another
connection holds the write lock, and automatic checkpoints (the one slow thing a WAL commit
can do) are off on it. Only when the lock is taken does the call move to the thread, whose
connection waits for the lock without stalling the event loop, retried with backoff until
`max_wait`. "database is locked" never reaches a caller or a job outcome: past `max_wait`
callers get `BackendUnavailableError`.

Checkpoints: the thread's connection checkpoints on its own commits; after every
`_CHECKPOINT_EVERY` fast commits a checkpoint runs on the thread (see `_checkpoint`), so the
WAL file is reset instead of growing (and `journal_size_limit` truncates it).

Fork: connections and the thread belong to the process that made them. The pid is checked on
every call; a child opens its own and never touches, or closes, the parent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from backburner.backends.records import fold
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
_CHECKPOINT_EVERY = 200
"""Fast-path commits between checkpoints: ~1000 WAL pages, SQLite's own default."""
_WAL_RESTART_SIZE = 64 * 1024 * 1024

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
        self._slow: sqlite3.Connection | None = None
        self._fast: sqlite3.Connection | None = None
        self._fast_thread: int | None = None
        self._changes_seen = 0
        self._commits_since_checkpoint = 0
        self._checkpointing = False
        # Connections inherited over fork are kept referenced so they are never closed here.
        self._inherited: list[sqlite3.Connection] = []

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)`; `fn` must be one complete transaction (or a read)."""
        self._check_process()
        fast = None if self._checkpointing else self._fast_connection()
        if fast is not None:
            try:
                result = fn(fast, *args)
            except sqlite3.OperationalError as exc:
                if fast.in_transaction:
                    fast.rollback()
                if not _is_transient(exc):
                    raise _translate(self.path, exc) from exc
                # Someone holds the write lock: wait for it on the thread instead.
            except sqlite3.DatabaseError as exc:
                if fast.in_transaction:
                    fast.rollback()
                raise _translate(self.path, exc) from exc
            except BaseException:
                if fast.in_transaction:
                    fast.rollback()
                raise
            else:
                self._after_fast_call(fast)
                return result
        return await self.run_in_thread(fn, *args)

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """The patient path only: for reads that may scan many rows (listings, counts), which
        must not hold up the event loop."""
        executor = self._executor_for_this_process()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._call_with_retries, fn, args)

    async def close(self) -> None:
        if self._pid != os.getpid():
            return
        if self._fast is not None:
            self._fast.close()
            self._fast = None
            self._fast_thread = None
        if self._executor is None:
            return
        executor = self._executor
        conn = self._slow
        self._executor = None
        self._slow = None

        def _close() -> None:
            if conn is not None:
                conn.close()

        try:
            await asyncio.get_running_loop().run_in_executor(executor, _close)
        except RuntimeError:
            # At interpreter exit the standard library has stopped every thread pool before
            # atexit hooks run (a `close_sync` registered there): no thread takes the call.
            # The pool's thread is idle then, so closing here races with nothing.
            _close()
        executor.shutdown(wait=True)

    # -- internals -------------------------------------------------------------------------
    def _check_process(self) -> None:
        if self._pid != os.getpid():
            for conn in (self._slow, self._fast):
                if conn is not None:
                    self._inherited.append(conn)
            self._slow = self._fast = None
            self._fast_thread = None
            self._executor = None
            self._changes_seen = self._commits_since_checkpoint = 0
            self._pid = os.getpid()

    def _executor_for_this_process(self) -> ThreadPoolExecutor:
        self._check_process()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="backburner-sqlite")
        return self._executor

    def _fast_connection(self) -> sqlite3.Connection | None:
        """The loop thread's connection; None on other threads (they take the slow path)."""
        if self._fast is not None:
            return self._fast if self._fast_thread == threading.get_ident() else None
        if self._fast_thread is not None:
            return None
        try:
            conn = self._open(busy_timeout=0.0, checkpoints=False)
        except (BackendError, sqlite3.Error):
            return None  # e.g. locked during first open: the slow path will wait for it
        self._fast = conn
        self._fast_thread = threading.get_ident()
        return conn

    def _after_fast_call(self, conn: sqlite3.Connection) -> None:
        changes = conn.total_changes
        if changes == self._changes_seen:
            return
        # A read changes nothing; anything else was one committed write transaction.
        self._changes_seen = changes
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= _CHECKPOINT_EVERY and not self._checkpointing:
            self._commits_since_checkpoint = 0
            self._checkpointing = True
            self._executor_for_this_process().submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """Runs on the thread. While it runs, this process's calls take the thread path and
        queue behind it, so no commit of ours lands mid-checkpoint: it can backfill every
        frame and the next write starts the WAL over instead of growing it. PASSIVE never
        blocks other processes; if their writes kept the WAL from resetting and it grew past
        the size limit, RESTART waits for them once."""
        try:
            mode = "PASSIVE"
            with contextlib.suppress(OSError):
                if os.stat(self.path + "-wal").st_size > _WAL_RESTART_SIZE:
                    mode = "RESTART"
            self._call_with_retries(
                lambda c: c.execute(f"PRAGMA wal_checkpoint({mode})").fetchall(), ()
            )
        except Exception as exc:  # a skipped checkpoint is retried after the next batch
            log.debug("checkpoint skipped: %s", exc)
        finally:
            self._checkpointing = False

    def _open(self, *, busy_timeout: float, checkpoints: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,
                cached_statements=256,
            )
        except sqlite3.OperationalError as exc:
            raise BackendUnavailableError(
                f"cannot open SQLite database {self.path}: {exc}"
            ) from exc
        try:
            conn.row_factory = sqlite3.Row
            # Job search folds case the same way on every store (see records.fold).
            conn.create_function("backburner_fold", 1, fold, deterministic=True)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigurationError(
                    f"{self.path}: SQLite refused WAL mode (got {mode!r}); Backburner needs "
                    "WAL so readers never block the writer. Is the file on a network filesystem?"
                )
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            # Bound the WAL file left after a checkpoint, so a busy dashboard cannot grow it.
            conn.execute("PRAGMA journal_size_limit=67108864")
            conn.execute("PRAGMA temp_store=MEMORY")
            if not checkpoints:
                conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            # Switching to WAL needs the file to itself: a process holding a read in the
            # old journal mode makes it "database is locked", which callers wait out (the
            # thread path retries it) instead of meeting a driver exception.
            conn.close()
            raise _translate(self.path, exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _slow_connection(self) -> sqlite3.Connection:
        if self._slow is None:
            self._slow = self._open(busy_timeout=self.busy_timeout, checkpoints=True)
        return self._slow

    def _call_with_retries(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        deadline = time.monotonic() + self.max_wait
        delay = 0.002
        while True:
            try:
                conn = self._slow_connection()
            except BackendError as exc:
                if "locked" in str(exc).lower() and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                raise
            try:
                return fn(conn, *args)
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.rollback()
                if _is_transient(exc):
                    if time.monotonic() < deadline:
                        time.sleep(delay)
                        delay = min(delay * 2, 0.25)
                        continue
                    raise BackendUnavailableError(
                        f"SQLite database {self.path} stayed locked for {self.max_wait:.0f}s"
                    ) from exc
                raise _translate(self.path, exc) from exc
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.rollback()
                raise _translate(self.path, exc) from exc
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise


def _is_transient(exc: Exception) -> bool:
    message = str(exc).lower()
    return any(t in message for t in _TRANSIENT)


def _translate(path: str, exc: Exception) -> BackendError:
    message = str(exc).lower()
    if any(u in message for u in _UNAVAILABLE) or _is_transient(exc):
        return BackendUnavailableError(f"SQLite database {path}: {exc}")
    return BackendError(f"SQLite database {path}: {exc}")


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
