"""Start-up checks of the Redis server (docs/reliability.md, R8).

Redis's defaults can lose acknowledged jobs: an eviction policy other than `noeviction`
deletes keys when memory runs out, and a server without AOF or RDB persistence forgets
everything when it restarts. The `durable` profile refuses such a server; the `dev` profile
(the default) warns. Managed services often disable CONFIG: then we cannot know, and say so.

On a Redis Cluster every primary holds part of the jobs, so every primary is checked (at
open, one CONFIG GET per primary); replicas are not: a replica's settings matter only once
it is promoted, and the next open after that checks it then.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import exceptions as rx
from redis.asyncio.cluster import RedisCluster

from backburner.backends.redis.client import Client
from backburner.errors import ConfigurationError

log = logging.getLogger("backburner.redis")

MIN_VERSION = (5, 0)
"""ZPOPMIN and multi-field HSET."""


async def check_version(client: Client, where: str) -> None:
    try:
        info = await client.info("server")
    except rx.ResponseError:
        return  # INFO disabled: the scripts will tell soon enough
    version = str(info.get("redis_version", "0"))
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if numbers < MIN_VERSION:
        raise ConfigurationError(f"{where}: Redis {version} is too old; Backburner needs 5.0+")


def durability_problems(config: dict[str, str]) -> tuple[list[str], list[str]]:
    """(problems that can lose jobs, weaker notes) for a server's CONFIG GET answers."""
    problems, notes = [], []
    policy = config.get("maxmemory-policy", "")
    if policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy!r}, so Redis may evict job keys when memory runs out"
            " (fix: CONFIG SET maxmemory-policy noeviction, and in redis.conf)"
        )
    aof = config.get("appendonly", "no") == "yes"
    rdb = bool(config.get("save", "").strip())
    if not aof and not rdb:
        problems.append(
            "persistence is off (appendonly no, save \"\"), so a restart loses every job"
            " (fix: appendonly yes, with appendfsync everysec or always)"
        )
    elif not aof:
        notes.append(
            "only RDB snapshots are on: jobs enqueued since the last snapshot are lost in a"
            " crash (appendonly yes keeps them)"
        )
    elif config.get("appendfsync") == "no":
        notes.append("appendfsync is no: the OS decides when jobs reach the disk")
    return problems, notes


async def check_durability(client: Client, profile: str, where: str) -> None:
    if isinstance(client, RedisCluster):
        for node in client.get_primaries():
            await _check_server(client, profile, f"{where} (cluster primary {node.name})",
                                {"target_nodes": node})
    else:
        await _check_server(client, profile, where, {})


async def _check_server(client: Client, profile: str, where: str, route: dict[str, Any]) -> None:
    try:
        config = {
            str(k): str(v)
            for name in ("maxmemory-policy", "appendonly", "appendfsync", "save")
            for k, v in (await client.config_get(name, **route)).items()
        }
    except rx.ResponseError as exc:
        config = {}
        reason = str(exc)
    else:
        reason = "CONFIG GET answered nothing"
    if "maxmemory-policy" not in config:
        log.warning(
            "%s: cannot check that Redis keeps jobs (%s); make sure maxmemory-policy is "
            "noeviction and persistence (AOF) is on", where, reason,
        )
        return
    problems, notes = durability_problems(config)
    if problems and profile == "durable":
        raise ConfigurationError(
            f"{where}: refusing to start with profile=durable: " + "; ".join(problems)
            + ". Use profile=dev to run anyway (jobs may be lost)."
        )
    for text in problems:
        log.warning("%s: %s (profile=%s)", where, text, profile)
    for text in notes:
        log.info("%s: %s", where, text)
