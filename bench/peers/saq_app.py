"""SAQ on Redis. Worker: `saq saq_app.settings --workers P --quiet`, concurrency from
`$BENCH_CONCURRENCY`. Waiting for a result listens on pub/sub (`job.refresh(until_complete)`).
No bulk enqueue API: `Queue.map` enqueues concurrently and then waits for every result."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import jobstats
from saq import Queue

queue = Queue.from_url(os.environ["BENCH_REDIS_URL"], name="bench")


async def noop(ctx: dict[str, Any]) -> None:
    jobstats.noop()


async def sleep(ctx: dict[str, Any]) -> None:
    jobstats.job_started()
    await asyncio.sleep(0.01)
    jobstats.job_finished()


async def ping(ctx: dict[str, Any]) -> int:
    return 1


settings: dict[str, Any] = {
    "queue": queue,
    "functions": [noop, sleep, ping],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "100")),
}


class Client:
    bulk_api: str | None = None

    async def start(self) -> None:
        await queue.connect()

    async def close(self) -> None:
        await queue.disconnect()

    async def enqueue(self, task: str) -> None:
        await queue.enqueue(task)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        raise NotImplementedError

    async def roundtrip(self, timeout: float) -> None:
        job = await queue.enqueue("ping")
        assert job is not None
        await job.refresh(until_complete=timeout)
        if not job.completed:
            raise TimeoutError(f"saq: ping not complete within {timeout}s")


def make_client() -> Client:
    return Client()
