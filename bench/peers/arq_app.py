"""arq on Redis. Worker: `arq arq_app.WorkerSettings` with `max_jobs` from
`$BENCH_CONCURRENCY`. arq polls its queue (a sorted set) every `poll_delay` (0.5 s by
default) and waits with `poll_delay` between result checks too: both are set to their best
case (1 ms and 0.5 ms), as the SQLite benchmark does for Huey. No bulk enqueue API."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

import jobstats
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

REDIS = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])
# Passed with --custom-log-dict: arq's default logs every job at INFO.
LOG_CONFIG: dict[str, Any] = {"version": 1, "disable_existing_loggers": False,
                              "root": {"level": "WARNING"}}


async def noop(ctx: dict[str, Any]) -> None:
    jobstats.noop()


async def sleep(ctx: dict[str, Any]) -> None:
    jobstats.job_started()
    await asyncio.sleep(0.01)
    jobstats.job_finished()


async def ping(ctx: dict[str, Any]) -> int:
    return 1


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop, sleep, ping]
    redis_settings = REDIS
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "100"))
    poll_delay = 0.001


class Client:
    bulk_api: str | None = None

    def __init__(self) -> None:
        self.pool: ArqRedis | None = None

    async def start(self) -> None:
        self.pool = await create_pool(REDIS)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()

    async def enqueue(self, task: str) -> None:
        assert self.pool is not None
        await self.pool.enqueue_job(task)

    async def enqueue_bulk(self, task: str, count: int) -> None:
        raise NotImplementedError

    async def roundtrip(self, timeout: float) -> None:
        assert self.pool is not None
        job = await self.pool.enqueue_job("ping")
        assert job is not None
        await job.result(timeout=timeout, poll_delay=0.0005)


def make_client() -> Client:
    return Client()
