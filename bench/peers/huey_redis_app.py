"""Huey on Redis (`RedisHuey`, blocking dequeue with BRPOP). Consumer:
`huey_consumer huey_redis_app.huey -k thread -w 1` (drain; `-k process -w 2` for two
processes, `-k thread -w 100` for the sleep scenario). A task returning None stores no
result; `ping` returns a value so the client can wait for it. Result reads poll (Huey starts
at 0.1 s and backs off): 0.5 ms here, its best case, as in the SQLite benchmark."""

from __future__ import annotations

import os
import time
from typing import Any

import jobstats
from huey import RedisHuey

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"], blocking=True)


@huey.task(name="bench.noop")
def noop() -> None:
    jobstats.noop()


@huey.task(name="bench.sleep")
def sleep() -> None:
    jobstats.job_started()
    time.sleep(0.01)  # sync-only library: worker threads give it concurrency
    jobstats.job_finished()


@huey.task(name="bench.ping")
def ping() -> int:
    return 1


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep}


class Client:
    bulk_api: str | None = "task.map(...) (one enqueue per task)"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def enqueue(self, task: str) -> None:
        TASKS[task]()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        TASKS[task].map([() for _ in range(count)])

    async def roundtrip(self, timeout: float) -> None:
        ping().get(blocking=True, timeout=timeout, backoff=1.0, max_delay=0.0005)


def make_client() -> Client:
    return Client()
