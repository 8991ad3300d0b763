"""Joining the application's own transaction (transactional enqueue).

`await task.enqueue(..., connection=conn)` inserts the job on the application's connection,
inside whatever transaction it has open: the job exists only if that transaction commits,
and the workers' wake-up (a NOTIFY in the same statement) goes out at that commit.

Accepted: an asyncpg connection (or a connection of an asyncpg pool); a psycopg 3
connection, async or sync; SQLAlchemy's `AsyncSession`/`AsyncConnection` on the asyncpg or
psycopg dialect and its `Session`/`Connection` on psycopg; Django's connection
(`django.db.connection`, `django.db.connections[alias]`) on its PostgreSQL backend with
psycopg 3. SQLAlchemy, Django and psycopg are imported only when one of their objects is
handed in (psycopg is the `backburner[psycopg]` extra).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from backburner.caller_connection import pinned
from backburner.errors import ConfigurationError

_WHAT = (
    "connection= must be an asyncpg connection, a psycopg 3 connection (async or sync), a "
    "SQLAlchemy AsyncSession/AsyncConnection on postgresql+asyncpg:// or postgresql+psycopg://, "
    "a SQLAlchemy Session/Connection on postgresql+psycopg://, or Django's connection on "
    "django.db.backends.postgresql with psycopg 3"
)


async def driver_connection(connection: Any) -> Any:
    """What the insert runs on, inside the application's transaction: the asyncpg
    connection underneath `connection`, or a PsycopgConnection (the same three calls over
    psycopg, see psycopg_connection.py)."""
    if isinstance(connection, (asyncpg.Connection, PoolConnectionProxy)):
        return connection
    if _is_psycopg(connection):
        return _over_psycopg(connection)
    if type(connection).__module__.startswith("sqlalchemy."):
        return await _from_sqlalchemy(connection)
    if _is_django(connection):
        return await _from_django(connection)
    raise ConfigurationError(f"{_WHAT}, got {type(connection).__name__}")


def _is_psycopg(connection: Any) -> bool:
    # Not imported yet: then `connection` cannot be one of its objects.
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(
        connection, (psycopg.AsyncConnection, psycopg.Connection)
    )


def _over_psycopg(connection: Any) -> Any:
    from backburner.backends.postgres.psycopg_connection import PsycopgConnection

    return PsycopgConnection(connection)


def _is_django(connection: Any) -> bool:
    # A subclass (PostGIS's wrapper, an instrumented one) counts too.
    return any(c.__module__.startswith("django.") for c in type(connection).__mro__)


async def _from_sqlalchemy(connection: Any) -> Any:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
    from sqlalchemy.orm import Session

    # Either begins the session's transaction if it has none yet (as any statement would).
    if isinstance(connection, AsyncSession):
        connection = await connection.connection()
    elif isinstance(connection, Session):
        connection = connection.connection()
    if isinstance(connection, AsyncConnection):
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if _is_psycopg(driver):
            if not connection.in_transaction():
                # "Commit as you go" (engine.connect(), no begin()): SQLAlchemy must know
                # the transaction our insert opens on the driver, or the application's
                # commit() would find none to commit.
                await connection.begin()
            return _over_psycopg(driver)
        if not isinstance(driver, (asyncpg.Connection, PoolConnectionProxy)):
            raise ConfigurationError(f"{_WHAT}, got a {type(driver).__name__} underneath")
        if not driver.is_in_transaction():
            # SQLAlchemy's asyncpg dialect opens the driver's transaction lazily, at its
            # first statement. Without this one, our insert would run outside the
            # transaction the application means to commit or roll back, and survive a
            # rollback. (Under isolation_level="AUTOCOMMIT" there is no transaction, and the
            # insert commits at once, as the application asked.)
            await connection.exec_driver_sql("SELECT 1")
        return driver
    if isinstance(connection, Connection):
        driver = connection.connection.driver_connection
        if not _is_psycopg(driver):
            raise ConfigurationError(f"{_WHAT}, got a {type(driver).__name__} underneath")
        if not connection.in_transaction():
            connection.begin()  # as for an AsyncConnection above
        return _over_psycopg(driver)
    raise ConfigurationError(f"{_WHAT}, got {type(connection).__name__}")


async def _from_django(connection: Any) -> Any:
    """The psycopg connection of a Django DatabaseWrapper. Django's own transaction state
    is that connection's: inside `transaction.atomic()` autocommit is off and the job
    commits or rolls back with the block; outside, it commits at once."""
    wrapper = pinned(connection)
    if getattr(wrapper, "vendor", None) != "postgresql" or not hasattr(
        wrapper, "ensure_connection"
    ):
        raise ConfigurationError(f"{_WHAT}, got {type(wrapper).__name__}")
    if wrapper.connection is None:
        # Django refuses to connect in a thread that runs an event loop (async_unsafe):
        # connected in a thread of its own. The wrapper is the caller's, found above.
        try:
            await asyncio.to_thread(wrapper.ensure_connection)
        except Exception as exc:
            # Django's OperationalError and the like wrap the driver's.
            cause: Any = exc.__cause__
            if _is_psycopg_error(cause):
                from backburner.backends.postgres.psycopg_connection import driver_error

                raise driver_error(cause) from exc
            raise
    driver = wrapper.connection
    if not _is_psycopg(driver):
        raise ConfigurationError(f"{_WHAT}, got a {type(driver).__name__} underneath")
    return _over_psycopg(driver)


def _is_psycopg_error(exc: BaseException | None) -> bool:
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)
