"""What a redis-py exception means for Backburner's callers.

Anything that says "the server cannot be used right now" (unreachable, timed out, loading its
data set after a restart, a replica that became read-only in a failover, out of memory with
`noeviction`, unable to persist) becomes `BackendUnavailableError`: workers back off and retry
it, HTTP layers answer 503. So does what a Redis Cluster says while a failover is under way:
the cluster is down, a slot is not served, TRYAGAIN, redirections that did not settle (a MOVED
or ASK storm outlasting redis-py's redirection budget), no node reachable; and a Sentinel set
that names no primary yet. Bad credentials are a configuration problem, not a transient one.
Nothing else from redis-py escapes the backend.
"""

from __future__ import annotations

from redis import exceptions as rx

from backburner.errors import BackendError, BackendUnavailableError, ConfigurationError

_TRANSIENT_REPLIES = (
    "LOADING", "BUSY", "MISCONF", "OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN",
    "NOREPLICAS",
    # WAIT sent to a node that a failover has just turned into a replica: the scripts went
    # to the new primary (MOVED), and nothing says a replica holds their writes yet.
    "WAIT cannot be used with replica",
)


# redis-py < 8.2 has no RedisClusterUnreachableError (a failed topology refresh raised the
# generic RedisClusterException there, which also stands for programming errors).
_UNREACHABLE: type[BaseException] = getattr(
    rx, "RedisClusterUnreachableError", rx.SlotNotCoveredError
)
_FAILOVER: tuple[type[BaseException], ...] = (
    rx.ClusterError, rx.ClusterDownError, rx.TryAgainError, rx.AskError, rx.MasterDownError,
    rx.SlotNotCoveredError, _UNREACHABLE,
)


def translate(exc: BaseException) -> Exception:
    if isinstance(exc, (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError)):
        return ConfigurationError(f"Redis refused the credentials or command: {exc}")
    if isinstance(exc, _FAILOVER):
        return BackendUnavailableError(
            f"the Redis Cluster cannot serve this now ({type(exc).__name__}: {exc})"
        )
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError, TimeoutError)):
        return BackendUnavailableError(f"Redis is unreachable: {exc or type(exc).__name__}")
    if isinstance(exc, rx.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES):
        return BackendUnavailableError(f"Redis cannot serve this now: {exc}")
    return BackendError(f"Redis: {type(exc).__name__}: {exc}")


TRANSLATED: tuple[type[BaseException], ...] = (
    rx.RedisError, rx.RedisClusterException, OSError, TimeoutError,
)
"""What `translate` handles; everything else is a bug and propagates as itself."""
