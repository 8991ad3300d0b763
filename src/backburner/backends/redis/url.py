"""The Redis backend's URL: `redis://[user:password@]host:port/db?prefix=...&profile=...`
(`rediss://` for TLS), or `redis+sentinel://[user:password@]h1:26379,h2:26380/<service>/<db>`
for a primary found through Redis Sentinel. A `redis://` URL naming any node of a Redis
Cluster works too: the backend finds out at open (cluster mode has only database 0).

Backburner's own options: `prefix` (default `backburner`) starts every key and channel name;
`profile` is `dev` (default: a server that could lose jobs is reported with a warning) or
`durable` (such a server is refused at start). A few connection options are passed on to
redis-py: `socket_timeout`, `socket_connect_timeout`, `socket_keepalive`, `max_connections`,
`health_check_interval`, `client_name` and the `ssl_*` options of redis-py's `from_url`.

`wait_replicas=N` (default 0) makes every write that acknowledges something (an enqueue, a
job's outcome, a cancel, ...) wait until N replicas have it (Redis's WAIT) before it returns,
so a failover to a replica cannot lose it; `wait_timeout` (seconds, default 5) bounds that
wait, after which the call fails as unavailable (the write may still be on the primary).
Sentinel URLs also take `sentinel_username` / `sentinel_password` (the sentinels' own
credentials; the URL's user and password are the data servers').

redis-py waits forever by default; here a connect gives up after 5 s and a reply after 30 s
unless the URL says otherwise, so an unreachable or hung server turns into
BackendUnavailableError (HTTP 503, a worker's back-off) instead of a hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from backburner.backends.redis.keys import check_prefix
from backburner.errors import ConfigurationError

PROFILES = ("dev", "durable")
_PASSED_ON = {
    "socket_timeout", "socket_connect_timeout", "socket_keepalive", "max_connections",
    "health_check_interval", "client_name", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile",
    "ssl_keyfile", "ssl_check_hostname", "ssl_min_version",
}
SENTINEL_SCHEME = "redis+sentinel"
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class RedisURL:
    connection_url: str
    """What redis-py gets: the URL without Backburner's own options."""
    prefix: str
    profile: str
    db: int = 0
    wait_replicas: int = 0
    """Replicas that must hold a write before it is acknowledged (0: don't wait)."""
    wait_timeout: float = 5.0
    sentinels: tuple[tuple[str, int], ...] = ()
    """Sentinel addresses (a `redis+sentinel://` URL), else empty."""
    service: str = ""
    """The Sentinel service name of the primary."""
    sentinel_options: dict[str, str] = field(default_factory=dict)

    @property
    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"{SENTINEL_SCHEME}://{hosts}/{self.service}/{self.db}"
        parts = urlsplit(self.connection_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_url(url: str) -> RedisURL:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", SENTINEL_SCHEME):
        raise ConfigurationError(f"not a Redis URL: {url!r}")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        options[name] = value
    prefix = check_prefix(options.pop("prefix", "backburner"))
    profile = options.pop("profile", "dev")
    if profile not in PROFILES:
        raise ConfigurationError(
            f"Redis URL option profile must be dev or durable, not {profile!r}"
        )
    wait_replicas = _count(options.pop("wait_replicas", "0"), "wait_replicas")
    wait_timeout = _seconds(options.pop("wait_timeout", "5"), "wait_timeout")
    sentinel_options = {n: options.pop(n) for n in _SENTINEL_OPTIONS if n in options}
    options.setdefault("socket_connect_timeout", "5")
    options.setdefault("socket_timeout", "30")
    unknown = set(options) - _PASSED_ON
    if unknown:
        raise ConfigurationError(f"unknown Redis URL option(s): {', '.join(sorted(unknown))}")
    if parts.scheme == SENTINEL_SCHEME:
        return _sentinel_url(parts.netloc, parts.path, options, sentinel_options, prefix,
                             profile, wait_replicas, wait_timeout)
    if sentinel_options:
        raise ConfigurationError(
            f"{', '.join(sorted(sentinel_options))}: only for {SENTINEL_SCHEME}:// URLs"
        )
    path = parts.path
    db = _db(path.lstrip("/"), "redis://host:6379/0")
    connection_url = urlunsplit(
        (parts.scheme, parts.netloc, path, urlencode(options), "")
    )
    return RedisURL(connection_url, prefix, profile, db, wait_replicas, wait_timeout)


def _count(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(
            f"Redis URL option {name} must be a whole number >= 0, got {raw!r}"
        )
    return value


def _seconds(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigurationError(f"Redis URL option {name} must be seconds > 0, got {raw!r}")
    return value


def _db(text: str, example: str) -> int:
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(
            f"the database part of a Redis URL must be a database number ({example}), got {text!r}"
        ) from None


def _sentinel_url(
    netloc: str, path: str, options: dict[str, str], sentinel_options: dict[str, str],
    prefix: str, profile: str, wait_replicas: int, wait_timeout: float,
) -> RedisURL:
    """`redis+sentinel://[user:password@]h1:p1,h2:p2/<service>[/<db>]`: the data servers'
    connection URL is built for the primary's address once a sentinel names it."""
    tls = sorted(name for name in options if name.startswith("ssl_"))
    if tls:
        raise ConfigurationError(
            f"{', '.join(tls)}: TLS is not supported with {SENTINEL_SCHEME}:// URLs yet"
        )
    credentials, _, hosts = netloc.rpartition("@")
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, "26379"
        try:
            sentinels.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ConfigurationError(f"bad sentinel address {item!r} in a Redis URL") from None
    service, _, db_text = path.strip("/").partition("/")
    example = f"{SENTINEL_SCHEME}://host:26379/mymaster/0"
    if not service or not sentinels or not hosts:
        raise ConfigurationError(
            f"a {SENTINEL_SCHEME} URL names sentinels and a service ({example})"
        )
    db = _db(db_text, example)
    # Only the options: the address comes from the sentinels.
    auth = f"{credentials}@" if credentials else ""
    connection_url = urlunsplit(("redis", f"{auth}sentinel", f"/{db}", urlencode(options), ""))
    return RedisURL(
        connection_url, prefix, profile, db, wait_replicas, wait_timeout, tuple(sentinels),
        unquote(service), sentinel_options,
    )
