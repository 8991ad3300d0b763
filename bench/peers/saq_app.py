"""SAQ on Redis. Worker: `saq saq_app.settings --workers P --quiet`, concurrency from
`$BENCH_CONCURRENCY`. Waiting for a result: `Queue.apply(poll_interval=0.0005)`.
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
        # `Queue.apply`: SAQ's "enqueue and wait for the result", polling the job every
        # 0.5 ms (its best case; 0.5 s by default). Not `job.refresh(until_complete=...)`: it
        # reads the job, then SUBSCRIBEs, and a job that completes in between is waited for
        # until the timeout (seen here within a few hundred sequential jobs).
        if await queue.apply("ping", timeout=timeout, poll_interval=0.0005) != 1:
            raise RuntimeError("saq: ping returned no result")


def make_client() -> Client:
    return Client()
