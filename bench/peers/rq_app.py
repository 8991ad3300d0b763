"""RQ on Redis. Worker: `rq worker --worker-class rq.worker.SimpleWorker`, the class RQ's
own performance notes measure fastest (no fork per job). RQ has no in-process concurrency,
so the sleep scenario runs one job at a time per worker process."""

from __future__ import annotations

import os
import time
from typing import Any

import jobstats
from redis import Redis
from rq import Queue

REDIS_URL = os.environ["BENCH_REDIS_URL"]
QUEUE = "bench"


def noop() -> None:
    jobstats.noop()


def sleep() -> None:
    jobstats.job_started()
    time.sleep(0.01)
    jobstats.job_finished()


def ping() -> int:
    return 1


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep}


class Client:
    bulk_api: str | None = "Queue.enqueue_many (one pipeline per call)"

    def __init__(self) -> None:
        self.queue = Queue(QUEUE, connection=Redis.from_url(REDIS_URL))

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.queue.connection.close()

    async def enqueue(self, task: str) -> None:
        self.queue.enqueue(TASKS[task])

    async def enqueue_bulk(self, task: str, count: int) -> None:
        func = TASKS[task]
        self.queue.enqueue_many([Queue.prepare_data(func) for _ in range(count)])

    async def roundtrip(self, timeout: float) -> None:
        job = self.queue.enqueue(ping)
        # Blocks on the job's result stream (XREAD BLOCK): no polling.
        if job.latest_result(timeout=max(1, round(timeout))) is None:
            raise TimeoutError(f"rq: no result within {timeout}s")


def make_client() -> Client:
    return Client()
