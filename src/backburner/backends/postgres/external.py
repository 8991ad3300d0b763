"""Joining the application's own transaction (transactional enqueue).

`await task.enqueue(..., connection=conn)` inserts the job on the application's connection,
inside whatever transaction it has open: the job exists only if that transaction commits,
and the workers' wake-up (a NOTIFY in the same statement) goes out at that commit.

Accepted: an asyncpg connection (or a connection of an asyncpg pool), and SQLAlchemy's
`AsyncSession` or `AsyncConnection` on the asyncpg dialect (`postgresql+asyncpg://`).
SQLAlchemy is imported only when one of its objects is handed in.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from backburner.errors import ConfigurationError

_WHAT = (
    "connection= must be an asyncpg connection or a SQLAlchemy AsyncSession/AsyncConnection "
    "on the asyncpg dialect (postgresql+asyncpg://)"
)


async def driver_connection(connection: Any) -> Any:
    """The asyncpg connection underneath `connection`, inside its transaction."""
    if isinstance(connection, (asyncpg.Connection, PoolConnectionProxy)):
        return connection
    if type(connection).__module__.startswith("sqlalchemy."):
        return await _from_sqlalchemy(connection)
    raise ConfigurationError(f"{_WHAT}, got {type(connection).__name__}")


async def _from_sqlalchemy(connection: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(connection, AsyncSession):
        # Begins the session's transaction if it has none yet (as any statement would).
        connection = await connection.connection()
    if not isinstance(connection, AsyncConnection):
        raise ConfigurationError(f"{_WHAT}, got {type(connection).__name__}")
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, (asyncpg.Connection, PoolConnectionProxy)):
        raise ConfigurationError(f"{_WHAT}, got a {type(driver).__name__} underneath")
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg dialect opens the driver's transaction lazily, at its first
        # statement. Without this one, our insert would run outside the transaction the
        # application means to commit or roll back, and survive a rollback. (Under
        # isolation_level="AUTOCOMMIT" there is no transaction, and the insert commits at
        # once, as the application asked.)
        await connection.exec_driver_sql("SELECT 1")
    return driver
