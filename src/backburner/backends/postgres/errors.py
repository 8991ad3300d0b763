"""asyncpg's exceptions (and psycopg's, see DriverError), translated into Backburner's
(see backburner.errors).

Callers never see a raw driver exception. What a retry may cure (the server is down,
restarting, out of connections or disk, read-only after a failover, a connection was
dropped, a statement timed out) becomes `BackendUnavailableError`: workers back off and
retry, HTTP layers answer 503. A refused login or a missing database is the operator's
to fix (`ConfigurationError`); anything else is a `BackendError`.
"""

from __future__ import annotations

import asyncpg

from backburner.errors import BackendError, BackendUnavailableError, ConfigurationError

# SQLSTATE classes whose errors pass: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention (admin
# shutdown, cannot connect now, statement timeout), system error (I/O).
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_STATES = ("25006",)  # read-only transaction: a standby, or during a failover
_CONFIGURATION_CLASSES = ("28", "3D", "3F")  # login refused, no such database or schema


class DriverError(Exception):
    """An error of psycopg 3 on the application's own connection (transactional enqueue,
    see psycopg_connection.py), as `translate` reads it: its SQLSTATE ("" when the client
    raised it) and whether the connection is gone. psycopg is an optional extra: this
    module never imports it."""

    def __init__(self, message: str, sqlstate: str, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.connection_lost = connection_lost


def translate(exc: BaseException) -> BaseException:
    """The Backburner exception to raise for `exc` (`exc` itself when it is not a driver
    or connection error, e.g. CancelledError)."""
    if isinstance(exc, DriverError) and exc.connection_lost:
        return BackendUnavailableError(f"PostgreSQL connection lost: {_describe(exc)}")
    if isinstance(exc, (asyncpg.PostgresError, DriverError)):
        state = str(getattr(exc, "sqlstate", "") or "")
        if state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES:
            return BackendUnavailableError(f"PostgreSQL unavailable: {_describe(exc)}")
        if state[:2] in _CONFIGURATION_CLASSES:
            return ConfigurationError(f"PostgreSQL refused: {_describe(exc)}")
        return BackendError(f"PostgreSQL error: {_describe(exc)}")
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return ConfigurationError(f"PostgreSQL client configuration: {exc}")
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError)):
        # "connection is closed", "connection was closed in the middle of operation", ...
        return BackendUnavailableError(f"PostgreSQL connection lost: {_describe(exc)}")
    if isinstance(exc, (OSError, TimeoutError)):
        # Refused, reset, unreachable, DNS, or asyncpg's connect/command timeout.
        return BackendUnavailableError(f"PostgreSQL unreachable: {_describe(exc)}")
    return exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DriverError):
        return str(exc)  # names psycopg's exception already
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.UniqueViolationError) or (
        isinstance(exc, DriverError) and exc.sqlstate == "23505"
    )


TRANSLATED: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
    asyncpg.ClientConfigurationError, OSError, TimeoutError, DriverError,
)
"""What `translate` handles; anything else is a bug and propagates as itself."""
