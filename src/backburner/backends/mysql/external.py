"""Joining the application's own transaction (transactional enqueue).

`await task.enqueue(..., connection=conn)` inserts the job on the application's connection,
inside whatever transaction it has open: the job exists only if that transaction commits.
The tables are named with their database, so the application's connection may use another
database of the same server.

Accepted: an asyncmy connection, and SQLAlchemy's `AsyncSession` or `AsyncConnection` on the
asyncmy dialect (`mysql+asyncmy://...?charset=utf8mb4`). The connection must speak utf8mb4
(what every job's text is stored in). SQLAlchemy is imported only when one of its objects is
handed in.
"""

from __future__ import annotations

from typing import Any, cast

import asyncmy

from backburner.errors import ConfigurationError

_WHAT = (
    "connection= must be an asyncmy connection or a SQLAlchemy AsyncSession/AsyncConnection "
    "on the asyncmy dialect (mysql+asyncmy://)"
)


async def driver_connection(connection: Any) -> Any:
    """The asyncmy connection underneath `connection`, inside its transaction."""
    if type(connection).__module__.startswith("sqlalchemy."):
        connection = await _from_sqlalchemy(connection)
    if not isinstance(connection, asyncmy.Connection):
        raise ConfigurationError(f"{_WHAT}, got {type(connection).__name__}")
    charset = cast(Any, connection).character_set_name()  # untyped in asyncmy's stubs
    if charset != "utf8mb4":
        raise ConfigurationError(
            f"connection= must use the utf8mb4 character set (charset='utf8mb4'), not "
            f"{charset!r}: jobs hold any Unicode text"
        )
    return connection


async def _from_sqlalchemy(connection: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(connection, AsyncSession):
        # Begins the session's transaction if it has none yet (as any statement would).
        connection = await connection.connection()
    if not isinstance(connection, AsyncConnection):
        raise ConfigurationError(f"{_WHAT}, got {type(connection).__name__}")
    raw = await connection.get_raw_connection()
    # The asyncmy dialect runs its driver connection with autocommit off: our statements
    # join the transaction SQLAlchemy commits or rolls back.
    return raw.driver_connection
