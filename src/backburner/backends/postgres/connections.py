"""Connections to the server: the pool every statement goes through, and single
connections (the listener, leader election).

Time is stored as `timestamptz` (the native type: exact to the microsecond, time-zone safe,
readable in psql and usable with PostgreSQL's date functions), and always taken from the
server's clock (`now()`), never the worker's. The protocol speaks epoch seconds, so the
connections Backburner owns get a binary codec that turns `timestamptz` straight into a
float and back: no datetime objects on the hot path, and `record_from_row` reads rows as is.
Connections handed in by the application (transactional enqueue) keep their own codecs:
the statements run there take and return no timestamps.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg

from backburner.backends.postgres.config import PostgresConfig
from backburner.backends.postgres.errors import TRANSLATED, translate
from backburner.errors import BackendUnavailableError

_PG_EPOCH = 946_684_800
"""2000-01-01T00:00:00Z in Unix seconds: the origin of PostgreSQL's binary timestamps."""
_INFINITY = 2**63 - 1


def _decode_timestamp(value: tuple[int]) -> float:
    micros = value[0]
    if micros in (_INFINITY, -_INFINITY - 1):
        return float("inf") if micros > 0 else float("-inf")
    return micros / 1_000_000 + _PG_EPOCH


def _encode_timestamp(value: float) -> tuple[int]:
    return (round((value - _PG_EPOCH) * 1_000_000),)


_ARRAY_TYPES = ("int2", "int4", "int8", "float8", "text", "bool", "jsonb", "timestamptz")
_LEARN_ARRAYS = "SELECT " + ", ".join(
    f"${n}::{name}[] IS NULL" for n, name in enumerate(_ARRAY_TYPES, 1)
)
"""A statement naming every array type the queries pass, run once per connection behind a
transaction pooler (see `prepare_connection`)."""


async def prepare_connection(conn: Any, *, transaction_pooled: bool = False) -> None:
    """Run on every connection Backburner opens."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_encode_timestamp,
        decoder=_decode_timestamp, format="tuple",
    )
    if transaction_pooled:
        # asyncpg looks up a type it has no codec for (arrays of int4, float8, ...) the
        # first time a statement uses it, and turns `jit` off for the session around the
        # lookup (set_config(..., false), then back). Behind a transaction pooler the
        # three statements could run on three server sessions, leaving one with jit off
        # for whoever gets it next. Learnt here, inside one transaction, they run on one
        # session and leave it as it was.
        async with conn.transaction():
            await conn.execute(_LEARN_ARRAYS, *[None] * len(_ARRAY_TYPES))


def application_name(config: PostgresConfig, role: str) -> str:
    """Shown in pg_stat_activity: `backburner:<schema>` for the pool, with `:<role>` for
    the listener, so an operator (or a test) can tell the apps and the two kinds apart.
    The server keeps 63 bytes of it."""
    name = f"backburner:{config.schema}"
    return f"{name}:{role}" if role else name


def _settings(config: PostgresConfig, role: str) -> dict[str, str]:
    # A startup parameter, which PgBouncer passes on (it tracks application_name per client).
    return {"application_name": application_name(config, role)}


def _pooled_options(config: PostgresConfig) -> dict[str, Any]:
    """What changes behind a transaction pooler: each transaction may land on another
    server session, where a statement prepared on the previous one does not exist. With
    the cache off, asyncpg parses every statement again, unnamed, in the same message
    exchange as its execution."""
    return {"statement_cache_size": 0} if config.transaction_pooled else {}


async def _no_reset(_conn: Any) -> None:
    """The pool's release step. asyncpg's default sends `pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL` on every release: a round trip per call, which doubled the
    cost of a one-statement enqueue, and behind a transaction pooler a statement that
    would land on whatever server session the pooler picks, undoing settings of a session
    that is not ours. Backburner leaves nothing to reset: its locks are transaction-level,
    its settings SET LOCAL, it never LISTENs or declares cursors on pooled connections
    (tests/stores/test_postgres_pgbouncer.py scans the SQL for that). A connection given
    back inside a transaction (a call cancelled mid-way) is still rolled back: asyncpg
    does that itself before it calls a custom reset."""


class _FloorRetries(logging.Filter):
    """asyncpg's pool keeps `min_size` connections open, and while the server is down it
    logs a warning with a full traceback at every attempt to reconnect them (every 1 to
    60 s, for as long as the outage lasts). The backend logs an outage itself, once when
    it starts and once when it ends (backends/outage.py): those records are dropped. The
    filter sits on asyncpg's own logger, which is one per process: added once, it only
    ever drops that one message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to restore the pool connection floor")


_FLOOR_RETRIES = _FloorRetries()


async def create_pool(config: PostgresConfig) -> Any:
    """asyncpg's pool: statements are prepared once per connection and cached by text
    (every named query has a fixed text per schema), so each call is one round trip of
    Bind/Execute in the binary protocol. Behind a transaction pooler, not: see
    `_pooled_options`."""
    logging.getLogger("asyncpg.pool").addFilter(_FLOOR_RETRIES)  # a no-op when present
    extra: dict[str, Any] = {"reset": _no_reset, **_pooled_options(config)}
    return await asyncpg.create_pool(
        config.dsn,
        min_size=config.pool_min_size,
        max_size=config.pool_size,
        command_timeout=config.command_timeout,
        timeout=config.connect_timeout,
        init=functools.partial(prepare_connection,
                               transaction_pooled=config.transaction_pooled),
        connect=_connect_host_by_host,
        server_settings=_settings(config, ""),
        **extra,
    )


def split_hosts(dsn: str) -> list[str]:
    """One URL per host of a multi-host URL (`postgresql://u@h1:5432,h2:5433/db?...`), in
    their order; `[dsn]` itself for one host, or when `target_session_attrs` is
    `prefer-standby` (only asyncpg, seeing every host, can fall back to a primary)."""
    parts = urlsplit(dsn)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    hosts = hostlist.split(",")
    attrs = dict(parse_qsl(parts.query)).get("target_session_attrs", "")
    if len(hosts) < 2 or attrs == "prefer-standby":
        return [dsn]
    return [urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}")) for host in hosts]


async def _connect_host_by_host(dsn: str, **options: Any) -> Any:
    """asyncpg's connect, one host of a multi-host URL at a time, each given the whole
    `connect_timeout`. asyncpg tries the hosts in one loop under one timeout: a primary
    that is gone without refusing connections (a hung or unplugged machine: no RST, the
    handshake never answers) uses it all up, and the next host, a promoted standby, is
    never tried. libpq's connect_timeout is per host, too. A host that is unavailable
    (refused, timed out, read-only for `read-write`, starting up) passes the turn; a refused
    login or a missing database is raised at once."""
    *others, last = split_hosts(dsn)
    for one in others:
        try:
            return await asyncpg.connect(one, **options)
        except TRANSLATED as exc:
            if not isinstance(translate(exc), BackendUnavailableError):
                raise
    return await asyncpg.connect(last, **options)


LISTEN = "listen"
"""The role of the LISTEN connection: it goes to `config.listen_dsn`."""


async def connect(config: PostgresConfig, role: str) -> Any:
    """One connection outside the pool (LISTEN needs a session of its own; migrations run
    on one when the backend is closed)."""
    pooled = config.transaction_pooled and role != LISTEN
    if role == LISTEN:
        if config.listen_dsn is None:
            raise ConnectionError("no LISTEN connection behind a transaction pooler without "
                                  "listen_url")
        dsn, options = config.listen_dsn, {}
    else:
        dsn, options = config.dsn, _pooled_options(config)
    conn = await _connect_host_by_host(
        dsn,
        command_timeout=config.command_timeout,
        timeout=config.connect_timeout,
        server_settings=_settings(config, role),
        **options,
    )
    await prepare_connection(conn, transaction_pooled=pooled)
    return conn
