"""Redis unique keys: one key per (queue, task, key) in the queue's hash slot, removed when
its holder ends or is deleted, expiring by itself for the period scope."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from services import REDIS_URL, require_service

from backburner.backends.protocol import Completion, NewJob
from backburner.backends.redis import RedisBackend
from backburner.backends.redis.keys import hash_tag
from backburner.unique import UniqueScope


@pytest.fixture
async def backend() -> AsyncIterator[RedisBackend]:
    require_service(REDIS_URL)
    made = RedisBackend(f"{REDIS_URL}?prefix=bbt-{uuid.uuid4().hex[:12]}")
    await made.open()
    try:
        yield made
    finally:
        await made.destroy()
        await made.close()


def job(key: str, scope: UniqueScope = UniqueScope.ACTIVE, unique_for: float | None = None,
        queue: str = "default") -> NewJob:
    return NewJob(
        id=uuid.uuid4().hex, task="t", queue=queue, priority=0, args="[]", kwargs="{}",
        max_attempts=1, unique_key=key, unique_scope=scope, unique_for=unique_for,
    )


async def test_keys_live_in_the_queue_slot_and_go_with_their_holder(
    backend: RedisBackend,
) -> None:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        queue_keys = backend.keys.queue("mail")
        name = queue_keys.unique("t", "k")
        assert hash_tag(name) == hash_tag(queue_keys.job("x"))
        held = job("k", queue="mail")
        await backend.insert([held])
        assert await client.get(name) == held.id
        claim = await backend.claim("w", ["mail"], 1, 30.0)
        await backend.complete([Completion(held.id, claim.jobs[0].attempt, "null")])
        assert await client.get(name) is None
        deleted = job("k", queue="mail")
        await backend.insert([deleted])
        assert await backend.delete(deleted.id)
        assert await client.get(name) is None
        period = job("p", UniqueScope.PERIOD, unique_for=60, queue="mail")
        await backend.insert([period])
        assert 0 < await client.pttl(queue_keys.unique("t", "p")) <= 60_000
    finally:
        await client.aclose()
