"""Connections to the server: the pool every statement goes through, and scripts.

A script is several statements sent as one query (the connection has multi-statements on)
and read back result set by result set: one round trip for what would otherwise be several
(`BEGIN` with the first read of a transaction, the writes with its `COMMIT`). Parameters are
escaped by the driver, statement by statement, before the statements are joined.

Every connection speaks utf8mb4 (4-byte UTF-8, NUL characters kept), in strict SQL mode (bad
data is an error, never a silent truncation and a warning), with FOUND_ROWS (an UPDATE counts
the rows it matched, not only those it changed). Our transactions run READ COMMITTED, as the
PostgreSQL backend's do: each statement sees what committed before it, so a transaction that
waited for a lock reads the winner's work. A transaction stamps every time with one instant of
the server's clock, `@backburner_now`, set when it begins.

A transaction holds its row locks until its last script: a process stopped between two
scripts (SIGSTOP, an event loop blocked by a job) keeps others off those rows until it goes
on or its connection drops. So the transitions that lock running jobs (acknowledgements,
heartbeats) are one script from BEGIN to COMMIT whenever no flow is involved, and the rescue
locks only rows it has already seen expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncmy
from asyncmy.constants import CLIENT
from asyncmy.cursors import DictCursor

from backburner.backends.mysql import errors
from backburner.backends.mysql.config import MySQLConfig

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]
Statement = tuple[str, Params]
Row = dict[str, Any]

SQL_MODE = "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
NOW = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) / 1e6)"
"""The server's clock in epoch seconds: UTC_TIMESTAMP needs no session time zone and has no
daylight-saving ambiguity (UNIX_TIMESTAMP(NOW()) has both)."""
OPENING: list[Statement] = [
    ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", ()),
    ("BEGIN", ()),
    # One instant for the whole transaction, usable by every statement of its first script.
    (f"SET @backburner_now = {NOW}", ()),
]
RETRY_ROUNDS = 12
"""Runs of a transaction the server rolled back to break a deadlock, before giving up (a
hundred clients inserting the same unique keys at once needed more than five)."""

log = logging.getLogger("backburner.backends")


@dataclass(frozen=True, slots=True)
class Result:
    rows: list[Row]
    count: int
    """Rows matched (an UPDATE), inserted or deleted; for a SELECT, rows returned."""


def connect_options(config: MySQLConfig) -> dict[str, Any]:
    return {
        "host": config.host, "port": config.port, "user": config.user,
        "password": config.password, "unix_socket": config.unix_socket,
        "charset": "utf8mb4", "autocommit": True,
        "init_command": f"SET SESSION sql_mode = '{SQL_MODE}'",
        "client_flag": CLIENT.MULTI_STATEMENTS | CLIENT.FOUND_ROWS,
        "connect_timeout": config.connect_timeout, "read_timeout": config.command_timeout,
    }


class Pool:
    """asyncmy's pool behind a first-come, first-served gate. Its own waiters are not served
    in order: a connection given back is taken by whoever asks next without waiting, so
    under steady load a waiter (the rescue, a heartbeat) could wait for seconds or for ever
    (measured: one acquire never returned while twelve tasks shared four connections). Past
    the gate, a connection is always free."""

    def __init__(self, pool: Any, size: int) -> None:
        self.pool = pool
        self._gate = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._gate, self.pool.acquire() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close()

    def terminate(self) -> None:
        self.pool.terminate()

    async def wait_closed(self) -> None:
        await self.pool.wait_closed()


async def create_pool(config: MySQLConfig) -> Pool:
    pool = await asyncmy.create_pool(
        minsize=config.pool_min_size, maxsize=config.pool_size, **connect_options(config)
    )
    return Pool(pool, config.pool_size)


async def connect(config: MySQLConfig) -> Any:
    """One connection outside the pool (migrations, which hold a session lock)."""
    return await asyncmy.connect(**connect_options(config))


class Session:
    """A connection in use. `run` sends statements as one script. Inside `transaction`, the
    first script begins the transaction and the last commits it; writes whose results are
    not needed are `defer`red to ride with the next script (or the COMMIT)."""

    def __init__(self, conn: Any, *, transaction: bool = False, scripts: bool = True) -> None:
        self.conn = conn
        self.scripts = scripts
        """False for a connection that is not ours (transactional enqueue): its client may
        not allow multi-statements, so each statement is a round trip of its own."""
        self._opening: list[Statement] = list(OPENING) if transaction else []
        self._deferred: list[Statement] = []
        self.open = False
        """A transaction is open: begun by a script, not committed yet."""

    @property
    def pending(self) -> bool:
        """Something to commit: an open transaction, or deferred writes."""
        return self.open or bool(self._deferred)

    def defer(self, *statements: Statement) -> None:
        self._deferred.extend(statements)

    async def run(self, *statements: Statement, commit: bool = False) -> list[Result]:
        """One round trip; one `Result` per statement given (deferred ones go first)."""
        prefix = [*self._opening, *self._deferred]
        self.open = self.open or bool(self._opening)
        self._opening, self._deferred = [], []
        suffix: list[Statement] = [("COMMIT", ())] if commit and self.open else []
        script = [*prefix, *statements, *suffix]
        results = await self._send(script) if self.scripts else [
            result for statement in script for result in await self._send([statement])
        ]
        if suffix:
            self.open = False
        return results[len(prefix):len(results) - len(suffix)]

    async def _send(self, script: list[Statement]) -> list[Result]:
        if not script:
            return []
        async with self.conn.cursor(DictCursor) as cursor:
            sql = ";\n".join(cursor.mogrify(q, p) for q, p in script)
            await cursor.execute(sql)
            results = []
            while True:
                rows = list(await cursor.fetchall()) if cursor.description else []
                results.append(Result(rows, len(rows) if cursor.description else cursor.rowcount))
                if not await cursor.nextset():
                    break
        return results

    async def rows(self, query: str, params: Params = ()) -> list[Row]:
        return (await self.run((query, params)))[0].rows


async def transaction(pool: Any, work: Callable[[Session], Awaitable[T]]) -> T:
    """Run `work` in a transaction on a pooled connection and commit it (unless `work`
    committed with its last script). A transaction the server rolled back to break a
    deadlock is run again from the start: nothing of it was kept, and the locks that met
    are taken again in another order of arrival."""
    for round_ in range(RETRY_ROUNDS):
        async with pool.acquire() as conn:
            session = Session(conn, transaction=True)
            try:
                result = await work(session)
                if session.pending:
                    await session.run(commit=True)
                return result
            except errors.TRANSLATED as exc:
                await _roll_back(conn)
                if not errors.is_retryable(exc) or round_ == RETRY_ROUNDS - 1:
                    raise
                log.debug("MySQL transaction rolled back (%s); running it again", exc)
                # A random pause, growing with the rounds, so the transactions that met do
                # not meet again in the same order.
                await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(round_, 6)))
            except BaseException:
                await _roll_back(conn)
                raise
    raise AssertionError("unreachable")


async def _roll_back(conn: Any) -> None:
    """Best effort, on the way out of a failed transaction: a connection that cannot roll
    back is closed instead (the server rolls back a closed session's transaction; the pool
    drops a closed connection)."""
    try:
        if conn.connected and conn.get_transaction_status():
            await conn.rollback()
    except Exception:
        conn.close()
    except BaseException:
        conn.close()
        raise


async def single(pool: Any, *statements: Statement) -> list[Result]:
    """Statements outside a transaction (each commits by itself), one round trip."""
    async with pool.acquire() as conn:
        return await Session(conn).run(*statements)
