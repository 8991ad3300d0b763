"""The Redis backend's URL: `redis://[user:password@]host:port/db?prefix=...&profile=...`
(`rediss://` for TLS).

Backburner's own options: `prefix` (default `backburner`) starts every key and channel name;
`profile` is `dev` (default: a server that could lose jobs is reported with a warning) or
`durable` (such a server is refused at start). A few connection options are passed on to
redis-py: `socket_timeout`, `socket_connect_timeout`, `socket_keepalive`, `max_connections`,
`health_check_interval`, `client_name` and the `ssl_*` options of redis-py's `from_url`.

redis-py waits forever by default; here a connect gives up after 5 s and a reply after 30 s
unless the URL says otherwise, so an unreachable or hung server turns into
BackendUnavailableError (HTTP 503, a worker's back-off) instead of a hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from backburner.backends.redis.keys import check_prefix
from backburner.errors import ConfigurationError

PROFILES = ("dev", "durable")
_PASSED_ON = {
    "socket_timeout", "socket_connect_timeout", "socket_keepalive", "max_connections",
    "health_check_interval", "client_name", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile",
    "ssl_keyfile", "ssl_check_hostname", "ssl_min_version",
}


@dataclass(frozen=True)
class RedisURL:
    connection_url: str
    """What redis-py gets: the URL without Backburner's own options."""
    prefix: str
    profile: str

    @property
    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urlsplit(self.connection_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_url(url: str) -> RedisURL:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
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
    options.setdefault("socket_connect_timeout", "5")
    options.setdefault("socket_timeout", "30")
    unknown = set(options) - _PASSED_ON
    if unknown:
        raise ConfigurationError(f"unknown Redis URL option(s): {', '.join(sorted(unknown))}")
    path = parts.path
    if path not in ("", "/"):
        try:
            int(path.lstrip("/"))
        except ValueError:
            raise ConfigurationError(
                f"the path of a Redis URL is a database number (redis://host:6379/0), got {path!r}"
            ) from None
    connection_url = urlunsplit(
        (parts.scheme, parts.netloc, path, urlencode(options), "")
    )
    return RedisURL(connection_url, prefix, profile)
