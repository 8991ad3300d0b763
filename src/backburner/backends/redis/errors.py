"""What a redis-py exception means for Backburner's callers.

Anything that says "the server cannot be used right now" (unreachable, timed out, loading its
data set after a restart, a replica that became read-only in a failover, out of memory with
`noeviction`, unable to persist) becomes `BackendUnavailableError`: workers back off and retry
it, HTTP layers answer 503. Bad credentials are a configuration problem, not a transient one.
Nothing else from redis-py escapes the backend.
"""

from __future__ import annotations

from redis import exceptions as rx

from backburner.errors import BackendError, BackendUnavailableError, ConfigurationError

_TRANSIENT_REPLIES = (
    "LOADING", "BUSY", "MISCONF", "OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN",
    "NOREPLICAS",
)


def translate(exc: BaseException) -> Exception:
    if isinstance(exc, (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError)):
        return ConfigurationError(f"Redis refused the credentials or command: {exc}")
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError, TimeoutError)):
        return BackendUnavailableError(f"Redis is unreachable: {exc or type(exc).__name__}")
    if isinstance(exc, rx.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES):
        return BackendUnavailableError(f"Redis cannot serve this now: {exc}")
    return BackendError(f"Redis: {type(exc).__name__}: {exc}")


TRANSLATED: tuple[type[BaseException], ...] = (rx.RedisError, OSError, TimeoutError)
"""What `translate` handles; everything else is a bug and propagates as itself."""
