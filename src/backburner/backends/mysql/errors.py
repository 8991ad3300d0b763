"""asyncmy's exceptions, translated into Backburner's (see backburner.errors).

Callers never see a raw driver exception. What a retry may cure (the server is down,
restarting, out of connections, read-only after a failover, a connection was dropped, a
statement timed out, a deadlock or a lock wait that timed out) becomes
`BackendUnavailableError`: workers back off and retry, HTTP layers answer 503. A refused
login or a missing database is the operator's to fix (`ConfigurationError`); anything else
is a `BackendError`.
"""

from __future__ import annotations

from asyncmy import errors as driver

from backburner.errors import BackendError, BackendUnavailableError, ConfigurationError

DEADLOCK = 1213
LOCK_WAIT_TIMEOUT = 1205
DUPLICATE_KEY = 1062
_TRANSIENT = {
    DEADLOCK, LOCK_WAIT_TIMEOUT,
    1040,  # too many connections
    1053,  # server shutdown in progress
    1290, 1792, 1836,  # read-only (--read-only, a read-only transaction, read-only mode)
    1927,  # connection was killed
    1969,  # statement timeout (MariaDB max_statement_time)
    3024,  # statement timeout (MySQL max_execution_time)
    2002, 2003, 2006, 2013, 2055,  # cannot connect, server gone, lost connection
}
_CONFIGURATION = {1044, 1045, 1049, 1698}  # access denied, unknown database


def errno(exc: BaseException) -> int | None:
    """The server's (or the client's) error number of a driver exception."""
    code = exc.args[0] if isinstance(exc, driver.MySQLError) and exc.args else None
    return code if isinstance(code, int) else None


def translate(exc: BaseException) -> BaseException:
    """The Backburner exception to raise for `exc` (`exc` itself when it is not a driver
    or connection error, e.g. CancelledError)."""
    if isinstance(exc, driver.MySQLError):
        code = errno(exc)
        if code in _TRANSIENT or isinstance(exc, driver.InterfaceError):
            return BackendUnavailableError(f"MySQL unavailable: {_describe(exc)}")
        if code in _CONFIGURATION:
            return ConfigurationError(f"MySQL refused: {_describe(exc)}")
        if isinstance(exc, driver.OperationalError) and code is not None and code >= 2000:
            return BackendUnavailableError(f"MySQL connection lost: {_describe(exc)}")
        return BackendError(f"MySQL error: {_describe(exc)}")
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return BackendUnavailableError(f"MySQL unreachable: {_describe(exc)}")
    return exc


def is_retryable(exc: BaseException) -> bool:
    """A transaction the server rolled back to break a deadlock or a lock wait: running it
    again from the start is safe (nothing of it was kept)."""
    return errno(exc) in (DEADLOCK, LOCK_WAIT_TIMEOUT)


def is_duplicate(exc: BaseException, index: str | None = None) -> bool:
    """A duplicate key (on `index`, when named)."""
    if errno(exc) != DUPLICATE_KEY:
        return False
    return index is None or f"'{index}'" in str(exc) or f".{index}'" in str(exc)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


TRANSLATED: tuple[type[BaseException], ...] = (driver.MySQLError, OSError, TimeoutError)
"""What `translate` handles; anything else is a bug and propagates as itself."""
