"""The Redis backend on a Redis Cluster and behind Redis Sentinel: URL parsing of
`redis+sentinel://` and the replica-wait options, cluster detection at open (and db 0 only),
jobs of queues living on different primaries, WAIT for replicas, scripts reloaded into every
primary, durability checked on every primary, events across processes, destroy on every node.

One private 6-node cluster (tests/redis_cluster.py) serves the whole module. The contract
suite also runs on a cluster (BACKBURNER_TEST_REDIS_CLUSTER=1, see scripts/test.sh); failover
is R26/R27 (tests/reliability)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis_cluster import RedisClusterSetup
from redis_server import RedisServer, redis_server_binary

from backburner.backends.protocol import Completion, JobFilter, NewJob
from backburner.backends.redis import RedisBackend
from backburner.backends.redis.keys import Keys
from backburner.backends.redis.url import parse_url
from backburner.errors import BackendUnavailableError, ConfigurationError
from backburner.notify import Event


def _job(queue: str = "default") -> NewJob:
    return NewJob(id=str(uuid.uuid4()), task="t", queue=queue, priority=0, args="[]",
                  kwargs="{}", max_attempts=1)


# -- URLs (no server) ---------------------------------------------------------------------------
def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    parsed = parse_url("redis+sentinel://u:pw@h1:26379,h2:26380,h3/mymaster/2?prefix=app"
                       "&sentinel_password=spw&wait_replicas=1&wait_timeout=0.5")
    assert parsed.sentinels == (("h1", 26379), ("h2", 26380), ("h3", 26379))
    assert (parsed.service, parsed.db, parsed.prefix) == ("mymaster", 2, "app")
    assert parsed.sentinel_options == {"sentinel_password": "spw"}
    assert (parsed.wait_replicas, parsed.wait_timeout) == (1, 0.5)
    assert "pw" not in parsed.display and parsed.display.startswith("redis+sentinel://h1:26379")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1:26379", "names sentinels and a service"),
        ("redis+sentinel://h1:x/mymaster", "bad sentinel address"),
        ("redis+sentinel://h1/mymaster/zero", "database number"),
        ("redis://h/0?sentinel_password=x", "only for redis\\+sentinel"),
        ("redis+sentinel://h1/mymaster/0?ssl_ca_certs=x", "TLS is not supported"),
        ("redis://h/0?wait_replicas=-1", "wait_replicas must be a whole number"),
        ("redis://h/0?wait_replicas=one", "wait_replicas must be a whole number"),
        ("redis://h/0?wait_timeout=0", "wait_timeout must be seconds > 0"),
    ],
)
def test_bad_sentinel_and_wait_options_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_url(url)


# -- a real cluster -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSetup]:
    redis_server_binary()  # fails under CI, skips loudly elsewhere, when Redis is missing
    with RedisClusterSetup(Path(tmp_path_factory.mktemp("cluster"))) as running:
        yield running


@pytest.fixture
async def backend(cluster: RedisClusterSetup) -> AsyncIterator[RedisBackend]:
    store = RedisBackend(f"{cluster.url}?prefix=bbt-{uuid.uuid4().hex[:12]}&wait_replicas=1")
    await store.open()
    try:
        yield store
    finally:
        await store.destroy()
        await store.close()


def _queues_on_every_primary(prefix: str) -> list[str]:
    """Queue names whose slots fall in each third of the slot range (one per primary of the
    fixture's cluster, which `--cluster create` splits evenly)."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < 3:
        name = f"q{n}"
        slot = key_slot(f"{prefix}/{name}".encode())
        found.setdefault(0 if slot <= 5460 else 1 if slot <= 10922 else 2, name)
        n += 1
    return [found[third] for third in range(3)]


async def test_a_cluster_node_url_opens_the_cluster_client(backend: RedisBackend) -> None:
    assert isinstance(backend._client, RedisCluster)


async def test_a_cluster_url_with_another_database_is_refused(cluster: RedisClusterSetup) -> None:
    store = RedisBackend(cluster.url.replace("/0", "/3"))
    with pytest.raises(ConfigurationError, match="only database 0"):
        await store.open()


async def test_jobs_of_queues_on_every_primary_are_stored_claimed_and_listed(
    backend: RedisBackend,
) -> None:
    queues = _queues_on_every_primary(backend.keys.prefix)
    jobs = [_job(q) for q in queues for _ in range(2)]
    inserted = await backend.insert(jobs)
    assert [i.id for i in inserted] == [j.id for j in jobs]
    claim = await backend.claim("w", queues, 10, 30.0)
    assert sorted(j.id for j in claim.jobs) == sorted(j.id for j in jobs)
    done = await backend.complete([Completion(j.id, 1, "null") for j in claim.jobs])
    assert done == [True] * len(jobs)
    for job in jobs:
        record = await backend.get(job.id)
        assert record is not None and record.state.value == "completed"
    page = await backend.list_jobs(JobFilter(), limit=10)
    assert sorted(j.id for j in page.jobs) == sorted(j.id for j in jobs)
    assert sum((await backend.counts()).values()) == len(jobs)
    assert await backend.lead("w", 10.0)


async def test_a_duplicate_id_in_another_queue_is_refused_and_the_first_job_kept(
    backend: RedisBackend,
) -> None:
    """The directory (slot `{prefix}`) is reserved before the queue scripts run (their own
    slots): a clash stores nothing, and the job that holds the id keeps it."""
    first, second = _queues_on_every_primary(backend.keys.prefix)[:2]
    job = _job(first)
    await backend.insert([job])
    clone = dataclasses.replace(job, queue=second)
    with pytest.raises(ConfigurationError, match="duplicate job id"):
        await backend.insert([clone, _job(second)])
    record = await backend.get(job.id)
    assert record is not None and record.queue == first
    assert (await backend.counts()).get((second, record.state), 0) == 0


async def test_more_replicas_than_there_are_is_refused_as_unavailable(
    cluster: RedisClusterSetup,
) -> None:
    """Each primary has one replica: waiting for two times out, and the caller is told the
    write was not confirmed (the job is on the primary)."""
    store = RedisBackend(f"{cluster.url}?prefix=bbt-{uuid.uuid4().hex[:12]}"
                         "&wait_replicas=2&wait_timeout=0.2")
    await store.open()
    try:
        with pytest.raises(BackendUnavailableError, match="wait_replicas"):
            await store.insert([_job()])
    finally:
        await store.destroy()
        await store.close()


async def test_scripts_are_loaded_again_into_every_primary(backend: RedisBackend) -> None:
    client = backend._client
    assert isinstance(client, RedisCluster)
    queues = _queues_on_every_primary(backend.keys.prefix)
    # What a failover to a replica that never loaded them looks like (SCRIPT FLUSH goes to
    # every primary).
    await client.script_flush()
    await backend.insert([_job(q) for q in queues])
    claim = await backend.claim("w", queues, 10, 30.0)
    assert len(claim.jobs) == 3


async def test_every_primary_is_checked_for_durability(
    cluster: RedisClusterSetup, caplog: pytest.LogCaptureFixture
) -> None:
    probe = RedisCluster.from_url(cluster.url, decode_responses=True)
    await probe.initialize()
    primary = probe.get_primaries()[-1]
    try:
        await probe.config_set("maxmemory-policy", "allkeys-lru", target_nodes=primary)
        store = RedisBackend(f"{cluster.url}?profile=durable")
        with pytest.raises(ConfigurationError, match=f"cluster primary {primary.name}"):
            await store.open()
        caplog.set_level(logging.WARNING, "backburner.redis")
        dev = RedisBackend(cluster.url)
        await dev.open()
        await dev.close()
        assert f"cluster primary {primary.name}" in caplog.text
    finally:
        await probe.config_set("maxmemory-policy", "noeviction", target_nodes=primary)
        await probe.aclose()


async def test_events_reach_another_process_through_the_cluster(
    backend: RedisBackend, cluster: RedisClusterSetup
) -> None:
    """Classic pub/sub in a cluster reaches subscribers on every node: the scripts publish in
    their queue's slot, the listener may be connected to any node."""
    other = RedisBackend(f"{cluster.url_of(4)}?prefix={backend.keys.prefix}")
    await other.open()
    try:
        signals = other.notifier.subscribe(["wakeup"])
        channel = Keys(backend.keys.prefix).signals_channel
        await asyncio.wait_for(other.notifier.connected[channel].wait(), 10)  # type: ignore[attr-defined]
        queues = _queues_on_every_primary(backend.keys.prefix)
        await backend.insert([_job(q) for q in queues])
        backend.notifier.publish([Event("wakeup", "by-hand")])
        woken: set[str] = set()
        deadline = asyncio.get_running_loop().time() + 10
        while woken != {*queues, "by-hand"}:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"woken only for {woken}"
            if await signals.wait(left):
                woken |= {e.queue for e in signals.drain() if e.queue is not None}
    finally:
        await other.close()


async def test_destroy_removes_the_keys_on_every_node(cluster: RedisClusterSetup) -> None:
    prefix = f"bbt-{uuid.uuid4().hex[:12]}"
    store = RedisBackend(f"{cluster.url}?prefix={prefix}")
    await store.open()
    await store.insert([_job(q) for q in _queues_on_every_primary(prefix)])
    await store.destroy()
    client = store._client
    assert isinstance(client, RedisCluster)
    left = [k async for k in client.scan_iter(match=store.keys.scan_pattern)]
    await store.close()
    assert left == []


# -- one server with a replica ------------------------------------------------------------------
async def test_a_single_server_waits_for_its_replica(tmp_path: Path) -> None:
    """On one server the WAIT rides in the scripts' own pipeline: with a replica every
    acknowledging call returns once it holds the write; with none it is refused."""
    with RedisServer(tmp_path / "primary", "--repl-diskless-sync-delay", "0") as primary:
        alone = RedisBackend(f"{primary.url}?prefix=w&wait_replicas=1&wait_timeout=0.2")
        await alone.open()
        try:
            with pytest.raises(BackendUnavailableError, match="0 of 1 replica"):
                await alone.insert([_job()])
        finally:
            await alone.close()
        replica = RedisServer(tmp_path / "replica")
        replica.config = ("--replicaof", "127.0.0.1", str(primary.port))
        with replica:
            store = RedisBackend(f"{primary.url}?prefix=w2&wait_replicas=1")
            await store.open()
            try:
                job = _job()
                await store.insert([job])  # waits for the replica's first sync too
                claim = await store.claim("w", ["default"], 10, 30.0)
                assert [j.id for j in claim.jobs] == [job.id]
                assert await store.complete([Completion(job.id, 1, "null")]) == [True]
            finally:
                await store.destroy()
                await store.close()
