"""taskiq with taskiq-redis: `RedisStreamBroker` (acknowledged delivery, the broker the
taskiq-redis README leads with) and `RedisAsyncResultBackend`. Worker:
`taskiq worker taskiq_app:broker --workers P --max-async-tasks N`. Waiting for a result
polls (`check_interval`, 0.2 s by default): 0.5 ms here, its best case. No bulk enqueue API.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import jobstats
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

REDIS_URL = os.environ["BENCH_REDIS_URL"]

broker = RedisStreamBroker(url=REDIS_URL, queue_name="bench").with_result_backend(
    RedisAsyncResultBackend(redis_url=REDIS_URL)
)


@broker.task(task_name="bench.noop")
async def noop() -> None:
    jobstats.noop()


@broker.task(task_name="bench.sleep")
async def sleep() -> None:
    jobstats.job_started()
    await asyncio.sleep(0.01)
    jobstats.job_finished()


@broker.task(task_name="bench.ping")
async def ping() -> int:
    return 1


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep}


class Client:
    bulk_api: str | None = None

    async def start(self) -> None:
        await broker.startup()  # creates the stream's consumer group before jobs arrive

    async def close(self) -> None:
        await broker.shutdown()

    async def enqueue(self, task: str) -> None:
        await TASKS[task].kiq()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        raise NotImplementedError

    async def roundtrip(self, timeout: float) -> None:
        handle = await ping.kiq()
        await handle.wait_result(check_interval=0.0005, timeout=timeout)


def make_client() -> Client:
    return Client()
