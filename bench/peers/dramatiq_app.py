"""Dramatiq with its Redis broker, and the Results middleware (Redis) for the `ping` actor
whose result the latency scenario waits for. Workers run through `dramatiq_worker.py`."""

from __future__ import annotations

import os
import time
from typing import Any

import dramatiq
import jobstats
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

REDIS_URL = os.environ["BENCH_REDIS_URL"]

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench_noop", queue_name="bench")
def noop() -> None:
    jobstats.noop()


@dramatiq.actor(actor_name="bench_sleep", queue_name="bench")
def sleep() -> None:
    jobstats.job_started()
    time.sleep(0.01)  # sync-only library: worker threads give it concurrency
    jobstats.job_finished()


@dramatiq.actor(actor_name="bench_ping", queue_name="bench", store_results=True)
def ping() -> int:
    return 1


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep}


class Client:
    bulk_api: str | None = "group(...).run() (one enqueue per message)"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        broker.close()

    async def enqueue(self, task: str) -> None:
        TASKS[task].send()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        actor = TASKS[task]
        dramatiq.group(actor.message() for _ in range(count)).run()

    async def roundtrip(self, timeout: float) -> None:
        # The Redis results backend blocks on the result key (BRPOPLPUSH): no polling.
        ping.send().get_result(block=True, timeout=int(timeout * 1000))


def make_client() -> Client:
    return Client()
