"""The MySQL/MariaDB backend's URL: where the server is, which database holds the jobs.

`mysql://user:password@host:3306/jobs?pool_size=20` (`mariadb://` is the same backend). The
path names the database that holds Backburner's tables (`backburner_jobs`, ...; default
`backburner`), created at first use if the user may; apps with different databases share a
server without seeing each other's jobs. Query options:

- `pool_size` (10), `pool_min_size` (1): connections of the pool every statement goes through.
- `command_timeout` (30 s): past it a statement fails as unavailable (a hung server or a
  partition must not hang a web request or a worker forever).
- `connect_timeout` (5 s).
- `unix_socket`: a socket path to connect through instead of host and port.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from backburner.errors import ConfigurationError

SCHEMES = ("mysql", "mariadb")
DEFAULT_DATABASE = "backburner"
_MAX_IDENTIFIER = 64
_OPTIONS = {"pool_size", "pool_min_size", "command_timeout", "connect_timeout", "unix_socket"}


def quote_identifier(name: str) -> str:
    """A backquoted identifier: any name is safe inside SQL text."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True, slots=True)
class MySQLConfig:
    host: str
    port: int
    user: str | None
    password: str
    database: str
    unix_socket: str | None = None
    pool_size: int = 10
    pool_min_size: int = 1
    command_timeout: float = 30.0
    connect_timeout: float = 5.0

    @property
    def quoted_database(self) -> str:
        return quote_identifier(self.database)

    @property
    def identity(self) -> str:
        """Names the store without credentials: for logs, and for the local wake-up
        sockets of the processes that share it (see backend.py)."""
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"{where}/{self.database}"

    @property
    def lock_name(self) -> str:
        """A server-wide lock name for this database's migrations (at most 64 characters)."""
        return "backburner:" + hashlib.sha256(self.database.encode()).hexdigest()[:40]


def parse_url(url: str) -> MySQLConfig:
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigurationError(f"{url!r} is not a mysql:// or mariadb:// URL")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ConfigurationError(
                f"{url!r}: unknown option {key!r} (known: {', '.join(sorted(_OPTIONS))})"
            )
        options[key] = value
    database = unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE
    if "/" in database or "\x00" in database or len(database) > _MAX_IDENTIFIER:
        raise ConfigurationError(f"{url!r}: the database must be 1 to 64 characters")
    try:
        port = parts.port or 3306
        config = MySQLConfig(
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else "",
            database=database,
            unix_socket=options.get("unix_socket") or None,
            pool_size=int(options.get("pool_size", 10)),
            pool_min_size=int(options.get("pool_min_size", 1)),
            command_timeout=float(options.get("command_timeout", 30.0)),
            connect_timeout=float(options.get("connect_timeout", 5.0)),
        )
    except ValueError as exc:
        raise ConfigurationError(f"{url!r}: {exc}") from None
    if config.pool_size < 1 or not 0 <= config.pool_min_size <= config.pool_size:
        raise ConfigurationError(f"{url!r}: need pool_size >= 1 and 0 <= pool_min_size <= it")
    if config.command_timeout <= 0 or config.connect_timeout <= 0:
        raise ConfigurationError(f"{url!r}: timeouts must be > 0")
    return config
