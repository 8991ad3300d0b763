"""The application's psycopg 3 connection, for transactional enqueue (see external.py).

The backend's insert code speaks asyncpg: `execute`, `fetch` (rows read by column name)
and `transaction()` (a savepoint inside an open transaction). `PsycopgConnection` offers
those three over a psycopg connection, async or sync. The statements are the same text:
psycopg's raw cursors take PostgreSQL's own `$1` placeholders (psycopg >= 3.2).

A sync connection (Django, sync SQLAlchemy) is called as is, blocking the event loop's
thread for each statement: it belongs to a thread that is waiting for this enqueue
(`enqueue_sync`), and psycopg 3 connections may be used from any thread.

Imported only when a psycopg object is handed in: psycopg is the `backburner[psycopg]` extra.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from backburner.backends.postgres.errors import DriverError


class PsycopgConnection:
    """The subset of asyncpg's connection that `PostgresBackend.insert` uses."""

    def __init__(self, conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> None:
        self._conn = conn

    def __repr__(self) -> str:
        return f"<PsycopgConnection {self._conn!r}>"

    async def execute(self, query: str, *args: Any) -> None:
        await self._run(query, args, fetch=False)

    async def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return await self._run(query, args, fetch=True)

    async def _run(
        self, query: str, args: Sequence[Any], *, fetch: bool
    ) -> list[dict[str, Any]]:
        params = [_param(a) for a in args]
        conn = self._conn
        try:
            if isinstance(conn, psycopg.AsyncConnection):
                async with psycopg.AsyncRawCursor(conn, row_factory=dict_row) as acur:
                    await acur.execute(query, params)
                    return await acur.fetchall() if fetch else []
            with psycopg.RawCursor(conn, row_factory=dict_row) as cur:
                cur.execute(query, params)
                return cur.fetchall() if fetch else []
        except psycopg.Error as exc:
            raise driver_error(exc) from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A savepoint in the application's transaction; with none (autocommit), a
        transaction of its own, committed at the end, as asyncpg's `transaction()`."""
        conn = self._conn
        if not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            # Not in autocommit, psycopg begins the application's transaction at its first
            # statement. Entered now, `conn.transaction()` would be that outer transaction
            # and commit it at its end, taking the decision away from the application: a
            # statement first, so that the block is a savepoint inside it.
            await self.execute("SELECT 1")
        try:
            if isinstance(conn, psycopg.AsyncConnection):
                async with conn.transaction():
                    yield
            else:
                with conn.transaction():
                    yield
        except psycopg.Error as exc:  # the body's own errors come translated already
            raise driver_error(exc) from exc


def driver_error(exc: psycopg.Error) -> DriverError:
    """`exc` as errors.translate reads it."""
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    sqlstate = exc.sqlstate or ""
    # Raised by the client with no SQLSTATE: the connection is closed or was lost.
    lost = not sqlstate and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return DriverError(message, sqlstate, connection_lost=lost)


def _param(value: Any) -> Any:
    """`value` as the statement's cast expects it. psycopg picks an array's type from its
    elements and refuses a list mixing int and float (a timeout of 30 beside one of 2.5):
    those become floats, which the statements cast to float8[] (ints never mix with floats
    in the int[] columns)."""
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if int in kinds and float in kinds:
            return [float(v) if type(v) is int else v for v in value]
    return value
