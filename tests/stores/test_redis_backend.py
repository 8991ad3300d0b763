"""What only the Redis backend has: its key layout (one Cluster slot per script), URL
options, script reloading after the server forgot them, prefix isolation, and the start-up
durability checks of R8 against private redis-server processes."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection as RedisConnection
from redis_server import RedisServer
from services import REDIS_URL, require_service

from backburner import Backburner
from backburner.backends.protocol import Completion, Failure, JobFilter, NewJob
from backburner.backends.redis import RedisBackend, wire
from backburner.backends.redis.checks import durability_problems
from backburner.backends.redis.keys import Keys, hash_tag
from backburner.backends.redis.url import parse_url
from backburner.errors import ConfigurationError
from backburner.instrument import Change
from backburner.job import FailureReason, JobState
from backburner.notify import Event


def _job(queue: str = "default") -> NewJob:
    return NewJob(id=str(uuid.uuid4()), task="t", queue=queue, priority=0, args="[]",
                  kwargs="{}", max_attempts=1)


# -- layout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("queue", ["default", "a}b", "{x}", "%7D", "é ü", ""])
def test_every_key_a_queue_script_touches_shares_one_slot(queue: str) -> None:
    q = Keys("bb").queue(queue)
    tags = {hash_tag(k) for k in (*q.script_keys, q.job("some-id"), q.base + "held:w1")}
    assert len(tags) == 1, tags


def test_queue_names_that_differ_never_share_keys() -> None:
    keys = Keys("bb")
    names = ["a}b", "a%7Db", "a{b", "a%7Bb", "a", "a/b"]
    bases = {keys.queue(n).base for n in names}
    assert len(bases) == len(names)


def test_shared_keys_share_one_slot_apart_from_the_queues() -> None:
    keys = Keys("bb")
    tags = {hash_tag(k) for k in keys.global_keys}
    assert tags == {"bb"}
    assert hash_tag(keys.queue("default").base + "ready") != "bb"


def test_a_prefix_owns_its_keys_and_not_a_longer_prefix() -> None:
    short, longer = Keys("bb"), Keys("bbx")
    assert short.owns(short.queue("q").job("1")) and short.owns(short.directory)
    assert not short.owns(longer.queue("q").job("1")) and not short.owns(longer.directory)


@pytest.mark.parametrize("prefix", ["", "a{b", "c}"])
def test_a_prefix_with_braces_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        Keys(prefix)


# -- URL --------------------------------------------------------------------------------------
def test_url_options_are_taken_out_and_checked() -> None:
    parsed = parse_url("redis://user:secret@127.0.0.1:6380/3?prefix=app&profile=durable"
                       "&socket_timeout=5")
    assert parsed.prefix == "app" and parsed.profile == "durable"
    assert "prefix" not in parsed.connection_url and "socket_timeout=5" in parsed.connection_url
    assert "secret" not in parsed.display and parsed.display == "redis://127.0.0.1:6380/3"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h/0?profile=safe", "profile must be dev or durable"),
        ("redis://h/0?bogus=1", "unknown Redis URL option"),
        ("redis://h/jobs", "database number"),
        ("http://h/0", "not a Redis URL"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_url(url)


# -- against the shared server ------------------------------------------------------------------
@pytest.fixture
async def redis_backend() -> RedisBackend:
    require_service(REDIS_URL)
    backend = RedisBackend(f"{REDIS_URL}?prefix=bbt-{uuid.uuid4().hex[:12]}")
    await backend.open()
    return backend


async def test_scripts_are_reloaded_after_the_server_forgot_them(
    redis_backend: RedisBackend,
) -> None:
    try:
        await redis_backend.insert([_job()])
        client = Redis.from_url(REDIS_URL)
        try:
            await client.script_flush()  # what a restart without persistence of scripts does
        finally:
            await client.aclose()
        job = _job()
        await redis_backend.insert([job])  # NOSCRIPT -> load -> run again
        claim = await redis_backend.claim("w", ["default"], 10, 30.0)
        assert len(claim.jobs) == 2
    finally:
        await redis_backend.destroy()
        await redis_backend.close()


@pytest.mark.parametrize("damage", [
    {"attempt": "abc"}, {"attempt": "nan"}, {"attempt": "inf"}, {"attempt": "1.5"}, {"task": None}])
async def test_a_running_job_damaged_by_hand_is_still_rescued(
    redis_backend: RedisBackend, damage: dict[str, str | None],
) -> None:
    """R20: a running job's hash changed by something else (a non-numeric attempt, a field
    gone) must not fail the leader's rescue (a ValueError there ended the worker)."""
    try:
        job = _job()
        await redis_backend.insert([job])
        (claimed,) = (await redis_backend.claim("w", ["default"], 1, 0.05)).jobs
        key = redis_backend.keys.queue("default").job(claimed.id)
        client = Redis.from_url(REDIS_URL)
        try:
            for field, value in damage.items():
                await (client.hdel(key, field) if value is None else client.hset(key, field,
                                                                                   value))
        finally:
            await client.aclose()
        await asyncio.sleep(0.1)  # past the lease
        (moved,) = await redis_backend.rescue_expired(max_lost=3)
        assert moved.id == job.id and moved.state is JobState.PENDING
    finally:
        await redis_backend.destroy()
        await redis_backend.close()


async def test_destroy_removes_only_its_own_prefix(redis_backend: RedisBackend) -> None:
    neighbour = RedisBackend(f"{REDIS_URL}?prefix={redis_backend.keys.prefix}x")
    await neighbour.open()
    try:
        await redis_backend.insert([_job()])
        kept = _job()
        await neighbour.insert([kept])
        await redis_backend.destroy()
        assert (await redis_backend.list_jobs(JobFilter())).jobs == []
        assert await neighbour.get(kept.id) is not None
    finally:
        await neighbour.destroy()
        await neighbour.close()
        await redis_backend.close()


async def test_the_scripts_write_only_keys_that_keys_py_names(
    redis_backend: RedisBackend,
) -> None:
    """lua/_queue.lua names a queue's keys from its base itself (only the ready set travels
    in KEYS): a name spelt differently there would be a key nothing in Python reads."""
    keys, queue = redis_backend.keys, "default"
    q = keys.queue(queue)
    try:
        ids = [_job(queue) for _ in range(4)]
        later = NewJob(id=str(uuid.uuid4()), task="t", queue=queue, priority=0, args="[]",
                       kwargs="{}", max_attempts=1, delay=3600.0)
        await redis_backend.insert([*ids, later])
        claimed = (await redis_backend.claim("w1", [queue], 3, 30.0)).jobs
        assert len(claimed) == 3
        await redis_backend.complete([Completion(claimed[0].id, claimed[0].attempt, "1")])
        await redis_backend.fail([Failure(claimed[1].id, claimed[1].attempt,
                                          {"type": "E", "message": "m", "traceback": None},
                                          FailureReason.ERROR)])
        await redis_backend.cancel(ids[3].id)
        await redis_backend.set_queue_paused(queue, True)
        named = {*q.script_keys, *(q.job(j.id) for j in (*ids, later)), q.base + "held:w1",
                 *keys.global_keys, keys.layout, keys.finished_indexed}
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            found = {k async for k in client.scan_iter(match=keys.scan_pattern)
                     if keys.owns(k)}
        finally:
            await client.aclose()
        assert found - named == set()
        counts = await redis_backend.counts()
        assert counts.get((queue, JobState.PENDING), 0) == 0
        assert counts[(queue, JobState.SCHEDULED)] == 1
        assert counts[(queue, JobState.RUNNING)] == 1
        for state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
            assert counts[(queue, state)] == 1, state
    finally:
        await redis_backend.destroy()
        await redis_backend.close()


async def test_a_transactional_connection_is_refused_with_the_reason(
    redis_backend: RedisBackend,
) -> None:
    try:
        with pytest.raises(ConfigurationError, match="PostgreSQL"):
            await redis_backend.insert([_job()], connection=object())
    finally:
        await redis_backend.destroy()
        await redis_backend.close()


# -- R8: durability checks at start -------------------------------------------------------------
def test_durability_problems_name_eviction_and_missing_persistence() -> None:
    problems, _ = durability_problems(
        {"maxmemory-policy": "allkeys-lru", "appendonly": "no", "save": ""}
    )
    assert any("maxmemory-policy" in p for p in problems)
    assert any("persistence is off" in p for p in problems)
    problems, notes = durability_problems(
        {"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "everysec",
         "save": ""}
    )
    assert problems == [] and notes == []


@pytest.mark.parametrize(
    "config",
    [
        ("--maxmemory-policy", "allkeys-lru", "--appendonly", "yes"),
        ("--maxmemory-policy", "noeviction", "--appendonly", "no"),
    ],
)
async def test_durable_profile_refuses_a_server_that_can_lose_jobs(
    tmp_path: Path, config: tuple[str, ...]
) -> None:
    with RedisServer(tmp_path / "redis", *config) as server:
        app = Backburner(f"{server.url}?profile=durable")
        with pytest.raises(ConfigurationError, match="refusing to start with profile=durable"):
            await app.open()


async def test_dev_profile_warns_and_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer(tmp_path / "redis", "--maxmemory-policy", "volatile-lru") as server:
        caplog.set_level(logging.WARNING, "backburner.redis")
        async with Backburner(server.url) as app:
            assert await app.get_job("nothing") is None
        assert "may evict job keys" in caplog.text


async def test_durable_profile_accepts_aof_and_noeviction(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always",
                     "--maxmemory-policy", "noeviction") as server:
        async with Backburner(f"{server.url}?profile=durable") as app:
            assert await app.get_job("nothing") is None


async def test_jobs_finished_before_the_finished_index_existed_are_pruned_too(
    redis_backend: RedisBackend,
) -> None:
    """A store written by an earlier Backburner has no finished indexes: the first open files
    its finished jobs, once (a marker says so), and retention prunes them."""
    from backburner.backends.protocol import Completion
    from backburner.job import JobState

    b = redis_backend
    again = RedisBackend(b.url)
    try:
        jobs = [_job() for _ in range(3)]
        await b.insert(jobs)
        claim = await b.claim("w", ["default"], 3, 30.0)
        await b.complete([Completion(j.id, j.attempt, "1") for j in claim.jobs])
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            finished = b.keys.queue("default").finished(JobState.COMPLETED)
            assert await client.zcard(finished) == 3
            await client.delete(finished, b.keys.finished_indexed)  # as an earlier version left it
            await again.open()
            assert await client.zcard(finished) == 3
            assert await client.exists(b.keys.finished_indexed)
        finally:
            await client.aclose()
        assert await again.prune({JobState.COMPLETED: 0.0}, 10) == 3
        assert await again.counts() == {}
    finally:
        await again.close()
        await b.destroy()
        await b.close()


async def _drain_for(sub: Any, seconds: float) -> list[Event]:
    """Every event the subscription gets within `seconds` (to see duplicates too)."""
    events: list[Event] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        if await sub.wait(left):
            events += sub.drain()
    return events


async def test_events_the_scripts_publish_reach_other_processes_once(
    redis_backend: RedisBackend,
) -> None:
    """lua/insert.lua, lua/claim.lua and lua/complete.lua publish the wake-up and the
    enqueue, claim and completion events themselves: another process (its own notifier)
    gets each once, and the sender's own subscribers get each once too (locally, not back
    from Redis)."""
    other = RedisBackend(f"{REDIS_URL}?prefix={redis_backend.keys.prefix}")
    await other.open()
    app = Backburner(backend=redis_backend)
    try:
        signals = other.notifier.subscribe(["wakeup"])
        jobs = other.notifier.subscribe(["job"])
        local = redis_backend.notifier.subscribe(["job", "wakeup"])
        for channel in (other.keys.signals_channel, other.keys.events_channel):
            await asyncio.wait_for(other.notifier.connected[channel].wait(), 5)  # type: ignore[attr-defined]
        await asyncio.wait_for(  # its own listener too, to see nothing comes back twice
            redis_backend.notifier.connected[redis_backend.keys.events_channel].wait(), 5  # type: ignore[attr-defined]
        )

        job = _job("q")
        await app._store([job], None)
        app.instrumentation.enqueued(["q"], [Change(job.id, "t", "q", "pending", 0)])
        claim = await redis_backend.claim("w", ["q"], 1, 30.0)
        app.instrumentation.changed([Change(job.id, "t", "q", "running", 1)])
        assert [await redis_backend.complete([Completion(job.id, 1, "null")])] == [[True]]
        app.instrumentation.changed([Change(job.id, "t", "q", "completed", 1)])
        assert claim.jobs[0].id == job.id

        woken = await _drain_for(signals, 0.5)
        assert [(e.kind, e.queue) for e in woken] == [("wakeup", "q")]
        seen = [(e.job_id, e.task, e.state, e.attempt) for e in await _drain_for(jobs, 0.2)]
        assert seen == [(job.id, "t", "pending", 0), (job.id, "t", "running", 1),
                        (job.id, "t", "completed", 1)]
        mine = [(e.kind, e.state) for e in await _drain_for(local, 0.2)]
        assert mine == [("wakeup", None), ("job", "pending"), ("job", "running"),
                        ("job", "completed")]
    finally:
        await other.close()
        await redis_backend.destroy()
        await redis_backend.close()


async def test_concurrent_enqueues_publish_no_wakeup_besides_the_scripts_own() -> None:
    """Concurrent enqueues share insert calls (group commit) and their callers resume after
    the step that stored their jobs: their wake-ups were still published a second time, by
    the notifier, in one message per batch. Every wake-up message is now a script's (one
    event each), and the local subscribers still get one wake-up per enqueue."""
    require_service(REDIS_URL)
    prefix = f"bbt-{uuid.uuid4().hex[:12]}"
    app = Backburner(f"{REDIS_URL}?prefix={prefix}")

    @app.task(name="t")
    async def t(n: int) -> None: ...

    listener = Redis.from_url(REDIS_URL, decode_responses=True)
    pubsub = listener.pubsub()
    try:
        await app.open()
        await pubsub.subscribe(f"{prefix}:signals")
        await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        local = app.backend.notifier.subscribe(["wakeup"])
        handles = await asyncio.gather(*(t.enqueue(n) for n in range(200)))
        assert len({h.id for h in handles}) == 200
        messages = []
        while (message := await pubsub.get_message(timeout=0.5)) is not None:
            messages.append(json.loads(message["data"]))
        assert messages, "no wake-up reached the channel"
        assert all(len(events) == 1 and events[0][0] == "wakeup" for _, events in messages), (
            messages
        )
        assert len(await _drain_for(local, 0.2)) == 200
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await app.backend.destroy()
        await app.close()


async def test_a_worker_leaves_the_running_and_completed_events_to_the_scripts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """claim.lua and complete.lua publish `running` and `completed` for every job: a worker
    with no log line, observer or local subscriber to tell builds no Change for them, and
    another process still hears each event once; a local subscriber gets them too."""
    require_service(REDIS_URL)
    caplog.set_level(logging.WARNING, logger="backburner")
    prefix = f"bbt-{uuid.uuid4().hex[:12]}"
    app = Backburner(f"{REDIS_URL}?prefix={prefix}")

    @app.task(name="t")
    async def t(n: int) -> int:
        return n

    other = RedisBackend(f"{REDIS_URL}?prefix={prefix}")
    try:
        await app.open()
        await other.open()
        heard = other.notifier.subscribe(["job"])
        await asyncio.wait_for(
            other.notifier.connected[other.keys.events_channel].wait(), 5  # type: ignore[attr-defined]
        )
        instrumentation = app.instrumentation
        assert not instrumentation.wants_changes("running")
        assert not instrumentation.wants_changes("completed")
        assert instrumentation.wants_changes("failed") and instrumentation.wants_changes()
        handles = await t.enqueue_many([(n,) for n in range(3)])
        await app.worker(burst=True, handle_signals=False).run()
        states = [(e.job_id, e.state) for e in await _drain_for(heard, 0.5)]
        for h in handles:
            assert [s for i, s in states if i == h.id] == ["pending", "running", "completed"]

        local = app.backend.notifier.subscribe(["job"])
        assert instrumentation.wants_changes("running")
        handle = await t.enqueue(7)
        await app.worker(burst=True, handle_signals=False).run()
        mine = [e.state for e in await _drain_for(local, 0.2) if e.job_id == handle.id]
        assert mine == ["pending", "running", "completed"]
        theirs = [e.state for e in await _drain_for(heard, 0.5) if e.job_id == handle.id]
        assert theirs == ["pending", "running", "completed"]
    finally:
        await other.close()
        await app.backend.destroy()
        await app.close()


@pytest.mark.parametrize("args", [
    ("EVALSHA", "ab12", 2, "k1", "k2", 1.5, 0.1, 1e20, -3, "é ü {x}", b"\x00\xff", ""),
    ("CONFIG GET", "maxmemory-policy"),
    (b"CLIENT SETNAME", "x"),
    ("SET", "k", bytearray(b"v"), memoryview(b"w")),
])
def test_commands_packed_by_hiredis_are_byte_identical(args: tuple[Any, ...]) -> None:
    plain = RedisConnection()
    fast = wire.packed(RedisConnection)()
    assert b"".join(fast.pack_command(*args)) == b"".join(plain.pack_command(*args))
