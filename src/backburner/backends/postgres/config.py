"""The PostgreSQL backend's URL: where the server is, which schema holds the jobs, pool size.

`postgresql://user:password@host:5432/db?schema=jobs&pool_size=20`. Backburner's own options
are taken out of the query string before the rest goes to asyncpg (which would otherwise send
unknown parameters to the server as settings, and the server would refuse them); options
asyncpg knows (`sslmode`, ...) pass through untouched. Ours:

- `schema` (default `backburner`): the schema holding this app's tables, created at first
  use; apps with different schemas share a database without seeing each other's jobs.
- `pool_size` (10), `pool_min_size` (1): connections of the statement pool; the LISTEN
  connection comes on top.
- `command_timeout` (30 s), `connect_timeout` (5 s, per host): past them a call fails as
  unavailable.
- `fallback_poll` (1 s): how often waiters are poked while the LISTEN connection is down
  (and all the time when there is none: see `pooler`).
- `pooler` (`none`): what sits between Backburner and the server. `transaction` (PgBouncer's
  `pool_mode = transaction`, or any pooler that hands a server session to a client for one
  transaction only) turns off what needs a session of its own: prepared statements cached
  per connection (asyncpg's statement cache: every statement is parsed again, unnamed) and
  the pool's reset query on release; LISTEN goes to `listen_url`, or, without one, wake-ups
  fall back to polling every `fallback_poll` seconds. `session` changes nothing (a session
  pooler keeps a client on one server session). Backburner holds no other session state
  across transactions: its advisory locks are transaction-level, every setting it changes
  is `SET LOCAL`/`set_config(..., true)`.
- `listen_url`: a percent-encoded postgresql:// URL reaching the same database directly (not
  through the transaction pooler), used for the LISTEN connection only. Only with
  `pooler=transaction`.

Several hosts (`postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write`) and
`target_session_attrs` are asyncpg's: each new connection tries the hosts in order and keeps
the first that matches, so after a failover the pool reconnects to whichever was promoted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from backburner.errors import ConfigurationError
from backburner.notify import EventKind

DEFAULT_SCHEMA = "backburner"

_OPTIONS = {
    "schema", "pool_size", "pool_min_size", "command_timeout", "connect_timeout", "fallback_poll",
    "pooler", "listen_url",
}
POOLERS = ("none", "session", "transaction")
"""The allowed values of `pooler=`."""
_MAX_IDENTIFIER = 63
"""Bytes PostgreSQL keeps of an identifier (NAMEDATALEN - 1); longer names are truncated on
LISTEN but refused by pg_notify(), so channel names must fit."""


def quote_identifier(name: str) -> str:
    """A double-quoted identifier: any name is safe inside SQL text, case is kept."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    dsn: str
    """What asyncpg gets: the URL without Backburner's options."""
    schema: str
    pool_size: int = 10
    pool_min_size: int = 1
    command_timeout: float = 30.0
    """Seconds a statement may take before the call fails as unavailable (a hung server or
    a partition must not hang a web request or a worker forever)."""
    connect_timeout: float = 5.0
    fallback_poll: float = 1.0
    """While the LISTEN connection is down, seconds between the pokes that make waiting
    workers and result waiters re-read the store (notifications may be missed meanwhile)."""
    pooler: str = "none"
    """One of POOLERS: `transaction` means no session state may outlive a transaction."""
    listen_url: str | None = None
    """The `listen_url` option (a URL straight to the server), None when not given."""

    @property
    def transaction_pooled(self) -> bool:
        return self.pooler == "transaction"

    @property
    def listen_dsn(self) -> str | None:
        """Where the LISTEN connection goes: `listen_url`, else the pool's own URL unless a
        transaction pooler is in between; None means nowhere: wake-ups and job events from
        other processes then arrive by polling only."""
        if self.listen_url is not None:
            return self.listen_url
        return None if self.transaction_pooled else self.dsn

    @property
    def quoted_schema(self) -> str:
        return quote_identifier(self.schema)

    def channel(self, kind: EventKind) -> str:
        """The NOTIFY channel of one event kind: one per kind, so a worker only hears
        wake-ups and cancel requests, never the flow of job events."""
        name = f"{self.schema}.{kind}"
        if len(name.encode()) > _MAX_IDENTIFIER:
            digest = hashlib.sha256(self.schema.encode()).hexdigest()[:20]
            name = f"backburner_{digest}.{kind}"
        return name


def parse_url(url: str) -> PostgresConfig:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigurationError(f"{url!r} is not a postgresql:// URL")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTIONS:
            ours[key] = value
        else:
            theirs.append((key, value))
    schema = ours.get("schema", DEFAULT_SCHEMA)
    if not schema or "\x00" in schema or len(schema.encode()) > _MAX_IDENTIFIER:
        raise ConfigurationError(f"{url!r}: schema must be 1 to 63 bytes, without NUL")
    if schema.lower().startswith("pg_"):
        raise ConfigurationError(f"{url!r}: schema names starting with pg_ are reserved")
    try:
        pool_size = int(ours.get("pool_size", 10))
        pool_min_size = int(ours.get("pool_min_size", min(1, pool_size)))
        command_timeout = float(ours.get("command_timeout", 30.0))
        connect_timeout = float(ours.get("connect_timeout", 5.0))
        fallback_poll = float(ours.get("fallback_poll", 1.0))
    except ValueError as exc:
        raise ConfigurationError(f"{url!r}: {exc}") from None
    if pool_size < 1 or not 0 <= pool_min_size <= pool_size:
        raise ConfigurationError(f"{url!r}: need pool_size >= 1 and 0 <= pool_min_size <= it")
    if command_timeout <= 0 or connect_timeout <= 0 or fallback_poll <= 0:
        raise ConfigurationError(f"{url!r}: timeouts must be > 0")
    dsn = urlunsplit(parts._replace(query=urlencode(theirs)))
    pooler = _pooler(url, ours.get("pooler", "none"))
    listen_url = _listen_url(url, pooler, ours.get("listen_url"))
    return PostgresConfig(dsn, schema, pool_size, pool_min_size, command_timeout,
                          connect_timeout, fallback_poll, pooler, listen_url)


def _pooler(url: str, value: str) -> str:
    if value in POOLERS:
        return value
    hint = (
        " (statement pooling cannot run the multi-statement transactions Backburner needs;"
        " use transaction pooling)" if value == "statement" else ""
    )
    raise ConfigurationError(
        f"{url!r}: pooler={value!r} is not known; use one of {', '.join(POOLERS)}{hint}"
    )


def _listen_url(url: str, pooler: str, listen_url: str | None) -> str | None:
    """The `listen_url` option, checked: only behind a transaction pooler, a postgresql://
    URL, with connection options only."""
    if listen_url is None:
        return None
    if pooler != "transaction":
        raise ConfigurationError(
            f"{url!r}: listen_url is only for pooler=transaction (without a transaction "
            "pooler, LISTEN uses the URL itself)"
        )
    listen = urlsplit(listen_url)
    if listen.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"{url!r}: listen_url must be a percent-encoded postgresql:// URL, got {listen_url!r}"
        )
    mixed = sorted({key for key, _ in parse_qsl(listen.query)} & _OPTIONS)
    if mixed:
        raise ConfigurationError(
            f"{url!r}: listen_url takes connection options only; {', '.join(mixed)} belong "
            "to the main URL"
        )
    return listen_url
