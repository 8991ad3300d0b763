"""The redis-py client a Redis URL needs: one server, a Redis Cluster, or a primary found
through Redis Sentinel.

A `redis://` URL may name a single server or any node of a cluster: which one is asked once,
at open (`INFO cluster`), never on the hot path. A single server gets the plain client it
always had (a blocking pool, commands packed by hiredis); a cluster gets redis-py's cluster
client, which routes each script by the slot of its keys (keys.py keeps every script in one
slot) and follows MOVED redirections after a failover. `redis+sentinel://` URLs get a plain
client whose pool asks the sentinels for the primary's address at every new connection, so a
promotion is followed once the old primary's connections fail.

Every client refuses to retry by itself: re-running a script whose reply was lost is not
always harmless (an insert would find its own ids). A failed call becomes
BackendUnavailableError and the caller decides (a worker backs off and calls again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url as redis_parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from backburner.backends.redis import wire
from backburner.backends.redis.url import RedisURL
from backburner.errors import ConfigurationError

Client: TypeAlias = "Redis | RedisCluster"

POOL_WAIT = 10.0
"""Seconds a call waits for a free connection (`max_connections` in the URL, default 50)."""

_COMMON: dict[str, Any] = {
    "decode_responses": True,
    # Payloads not written by Backburner are shown, not trusted (R20): never crash on bytes
    # that are not UTF-8.
    "encoding_errors": "replace",
    "socket_keepalive": True,
}


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


@dataclass
class Connected:
    client: Client
    helpers: list[Redis] = field(default_factory=list)
    """Clients of the sentinels (closed with the client)."""

    async def aclose(self) -> None:
        await self.client.aclose()
        for helper in self.helpers:
            await helper.aclose()


async def connect(options: RedisURL) -> Connected:
    """A client for the URL's server(s); raises what redis-py raises (the caller translates)."""
    if options.sentinels:
        return _sentinel_client(options)
    # A blocking pool: a burst of concurrent calls (a busy web process, many result waiters)
    # queues for a connection instead of failing with "Too many connections"; past POOL_WAIT
    # seconds the call fails as unavailable (HTTP 503, a worker's back-off).
    pool = BlockingConnectionPool.from_url(
        options.connection_url, timeout=POOL_WAIT, retry=_no_retry(), **_COMMON
    )
    pool.connection_class = wire.packed(pool.connection_class)
    client = Redis.from_pool(pool)
    try:
        if not await _cluster_enabled(client):
            return Connected(client)
    except BaseException:
        await client.aclose()
        raise
    await client.aclose()
    if options.db != 0:
        raise ConfigurationError(
            f"{options.display} is a Redis Cluster node, and a cluster has only database 0: "
            f"use /0 in the URL (not /{options.db})"
        )
    cluster = RedisCluster.from_url(options.connection_url, retry=_no_retry(), **_COMMON)
    try:
        await cluster.initialize()
    except BaseException:
        await cluster.aclose()
        raise
    return Connected(cluster)


async def _cluster_enabled(client: Redis) -> bool:
    try:
        info = await client.info("cluster")
    except rx.ResponseError as exc:
        # A URL with a database other than 0 selects it on connecting, which a cluster
        # node refuses before INFO is even sent ("... not allowed in cluster mode"). Any
        # other refusal: INFO disabled (some managed services), taken as a single server.
        return "cluster mode" in str(exc)
    return str(info.get("cluster_enabled", "0")) == "1"


def _sentinel_client(options: RedisURL) -> Connected:
    kwargs: dict[str, Any] = dict(redis_parse_url(options.connection_url))
    # The address comes from the sentinels; what the URL gave is a placeholder.
    for name in ("host", "port", "path", "connection_class"):
        kwargs.pop(name, None)
    sentinel_kwargs: dict[str, Any] = {
        k: v for k, v in kwargs.items() if k.startswith("socket_")
    }
    if "sentinel_username" in options.sentinel_options:
        sentinel_kwargs["username"] = options.sentinel_options["sentinel_username"]
    if "sentinel_password" in options.sentinel_options:
        sentinel_kwargs["password"] = options.sentinel_options["sentinel_password"]
    # Through a typed name: redis-py's Sentinel has an untyped __init__ before 8.2.
    make_sentinel: Callable[..., Sentinel] = Sentinel
    sentinel = make_sentinel(list(options.sentinels), sentinel_kwargs=sentinel_kwargs, **kwargs)
    client: Redis = sentinel.master_for(options.service, retry=_no_retry(), **_COMMON)
    return Connected(client, list(sentinel.sentinels))


def is_cluster(client: Client) -> bool:
    return isinstance(client, RedisCluster)
