"""The Redis backend's pipelined connection (backends/redis/pipelined.py), against the real
server: replies reach their own callers under concurrency, an error reply fails only its
call, a lost connection or a silent server fails what is in flight and the next call connects
again, a cancelled caller's late reply is not handed to the next one, and the backend on top
recovers from a killed connection and from a server that forgot its scripts."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import hiredis
import pytest
from redis import exceptions as rx
from redis.asyncio import Redis
from services import REDIS_URL, require_service

from backburner import Backburner
from backburner.backends.redis import RedisBackend
from backburner.backends.redis.pipelined import PipelinedConnection
from backburner.errors import BackendUnavailableError


def _pack(*args: Any) -> bytes:
    packed: bytes = hiredis.pack_command(args)
    return packed


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    require_service(REDIS_URL)
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def _forget(redis: Redis, prefix: str) -> None:
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


def _connection(redis: Redis, timeout: float | None = 5.0) -> PipelinedConnection:
    pool = redis.connection_pool
    return PipelinedConnection(pool.make_connection, timeout, "utf-8")


async def test_concurrent_calls_each_get_their_own_reply(redis: Redis) -> None:
    pipe = _connection(redis)
    try:
        words = [f"w{n}-{uuid.uuid4().hex}" for n in range(500)]
        replies = await asyncio.gather(*(pipe.call(_pack("ECHO", w)) for w in words))
        assert replies == words
        many = await pipe.call_many([_pack("ECHO", w) for w in words[:50]])
        assert many == words[:50]
    finally:
        await pipe.close()


async def test_an_error_reply_fails_only_its_own_call(redis: Redis) -> None:
    pipe = _connection(redis)
    try:
        good = pipe.call(_pack("ECHO", "before"))
        bad = pipe.call(_pack("EVALSHA", "0" * 40, 0))
        after = pipe.call(_pack("ECHO", "after"))
        results = await asyncio.gather(good, bad, after, return_exceptions=True)
        assert results[0] == "before" and results[2] == "after"
        assert isinstance(results[1], rx.NoScriptError)
        # In a batch, the error takes its place and nothing is raised.
        await redis.set("{bb-test}:pipelined-str", "text")
        many = await pipe.call_many([_pack("ECHO", "a"), _pack("HGET", "{bb-test}:pipelined-str",
                                     "field"), _pack("ECHO", "b")])
        assert many[0] == "a" and many[2] == "b"
        assert isinstance(many[1], rx.ResponseError) and "WRONGTYPE" in str(many[1])
    finally:
        await redis.delete("{bb-test}:pipelined-str")
        await pipe.close()


async def test_a_killed_connection_fails_what_is_in_flight_and_the_next_call_reconnects(
    redis: Redis,
) -> None:
    pipe = _connection(redis)
    try:
        first_id = await pipe.call(_pack("CLIENT", "ID"))
        # A call the server holds (BLPOP on an empty list), then the connection is killed.
        held = asyncio.ensure_future(pipe.call(_pack("BLPOP", f"empty-{uuid.uuid4()}", 5)))
        await asyncio.sleep(0.1)
        assert await redis.client_kill_filter(_id=first_id) == 1
        with pytest.raises(rx.ConnectionError):
            await asyncio.wait_for(held, 3)
        second_id = await pipe.call(_pack("CLIENT", "ID"))
        assert second_id != first_id
    finally:
        await pipe.close()


async def test_no_reply_within_the_timeout_fails_the_calls_and_drops_the_connection(
    redis: Redis,
) -> None:
    pipe = _connection(redis, timeout=0.3)
    try:
        first_id = await pipe.call(_pack("CLIENT", "ID"))
        key = f"empty-{uuid.uuid4()}"
        held = asyncio.ensure_future(pipe.call(_pack("BLPOP", key, 2)))
        behind = asyncio.ensure_future(pipe.call(_pack("ECHO", "behind")))
        with pytest.raises(rx.TimeoutError):
            await asyncio.wait_for(held, 3)
        with pytest.raises(rx.TimeoutError):
            await asyncio.wait_for(behind, 3)
        # A new connection: the old one's late reply can never reach a later caller.
        assert await pipe.call(_pack("ECHO", "fresh")) == "fresh"
        assert await pipe.call(_pack("CLIENT", "ID")) != first_id
    finally:
        await pipe.close()


async def test_a_cancelled_callers_reply_is_dropped_not_handed_on(redis: Redis) -> None:
    pipe = _connection(redis)
    try:
        key = f"list-{uuid.uuid4()}"
        held = asyncio.ensure_future(pipe.call(_pack("BLPOP", key, 2)))
        await asyncio.sleep(0.05)
        held.cancel()
        queued = asyncio.ensure_future(pipe.call(_pack("ECHO", "mine")))
        await redis.rpush(key, "x")  # the BLPOP answers now, for nobody
        assert await asyncio.wait_for(queued, 3) == "mine"
    finally:
        await redis.delete(key)
        await pipe.close()


async def test_calls_after_close_are_refused(redis: Redis) -> None:
    pipe = _connection(redis)
    assert await pipe.call(_pack("ECHO", "x")) == "x"
    await pipe.close()
    with pytest.raises(rx.ConnectionError):
        await pipe.call(_pack("ECHO", "y"))


async def test_the_backend_recovers_from_a_killed_connection_and_forgotten_scripts(
    redis: Redis,
) -> None:
    prefix = f"bb-pipe-{uuid.uuid4().hex[:8]}"
    app = Backburner(f"{REDIS_URL}?prefix={prefix}")

    @app.task(name="t")
    async def t(n: int) -> int:
        return n

    try:
        async with app:
            backend = app.backend
            assert isinstance(backend, RedisBackend) and backend._pipe is not None
            await t.enqueue(1)
            ids = {c["id"] for c in await redis.client_list() if c.get("cmd") != "client|list"}
            # Kill every connection of this process but the test's own client.
            mine = await redis.client_id()
            for client_id in ids - {str(mine)}:
                await redis.client_kill_filter(_id=client_id)
            outcomes = []
            for n in range(3):
                try:
                    outcomes.append((await t.enqueue(n)).id)
                except BackendUnavailableError:
                    outcomes.append("unavailable")
            assert outcomes[-1] != "unavailable"
            await redis.script_flush()
            job = await t.enqueue(7)
            assert (await job.info()).state.value == "pending"
    finally:
        await _forget(redis, prefix)


@pytest.mark.parametrize("protocol", [2, 3])
async def test_reads_through_the_pipelined_connection_on_either_resp_version(
    redis: Redis, protocol: int
) -> None:
    """HGETALL answers a map in RESP3 and a flat list in RESP2: a job reads back the same
    (the URL has no RESP option; redis-py's default decides, so both are tried here)."""
    prefix = f"bb-pipe-{uuid.uuid4().hex[:8]}"
    app = Backburner(f"{REDIS_URL}?prefix={prefix}")
    speaking = Redis.from_url(REDIS_URL, protocol=protocol, decode_responses=True)

    @app.task(name="t")
    async def t(text: str) -> str:
        return text

    try:
        async with app:
            backend = app.backend
            assert isinstance(backend, RedisBackend) and backend._pipe is not None
            await backend._pipe.close()
            backend._pipe = _connection(speaking)
            job = await t.enqueue("é ü \u2603")
            info = await job.info()
            assert info.state.value == "pending" and info.task == "t"
            assert info.kwargs == {"text": "é ü \u2603"}
            assert await app.get_job(job.id) is not None
    finally:
        await speaking.aclose()
        await _forget(redis, prefix)


async def test_a_cancelled_batch_leaves_no_reply_behind(redis: Redis) -> None:
    """A batch cancelled while its first command is held: the replies of the rest arrive
    later, are dropped, and the next call gets its own reply; no future is left holding an
    error that nobody reads (pytest runs with warnings as errors)."""
    pipe = _connection(redis)
    try:
        key = f"list-{uuid.uuid4()}"
        batch = asyncio.ensure_future(pipe.call_many(
            [_pack("BLPOP", key, 2), _pack("EVALSHA", "0" * 40, 0), _pack("ECHO", "late")]
        ))
        await asyncio.sleep(0.05)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        reported: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda _, context: reported.append(context))
        try:
            after = asyncio.ensure_future(pipe.call(_pack("ECHO", "mine")))
            await redis.rpush(key, "x")
            assert await asyncio.wait_for(after, 3) == "mine"
            gc.collect()
            await asyncio.sleep(0)
        finally:
            loop.set_exception_handler(previous)
        assert reported == []
    finally:
        await redis.delete(key)
        await pipe.close()


async def test_a_batch_runs_again_after_the_server_forgot_the_scripts(redis: Redis) -> None:
    """Scripts.run_many_piped: every call of a batch met NOSCRIPT and did not run; after the
    reload they run, once each."""
    from backburner.backends.redis.backend import SCRIPTS

    prefix = f"bb-pipe-{uuid.uuid4().hex[:8]}"
    app = Backburner(f"{REDIS_URL}?prefix={prefix}")
    try:
        async with app:
            backend = app.backend
            assert isinstance(backend, RedisBackend) and backend._pipe is not None
            client = await backend._connected()
            await redis.script_flush()
            calls = [backend._global(SCRIPTS["lead"], worker, 60_000) for worker in ("a", "b")]
            assert await SCRIPTS.run_many_piped(backend._pipe, client, calls) == [1, 0]
    finally:
        await _forget(redis, prefix)
