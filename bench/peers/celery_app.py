"""Celery with Redis as broker and result backend.

Throughput settings from Celery's "Optimizing" guide: for many short tasks a large prefetch
multiplier (it suggests 64 or 128); acks on receipt (the default, `task_acks_late=False`);
`ignore_result=True` on tasks whose result nobody reads (its task guide).
The worker runs with the solo pool (tasks in the consumer process: no hand-off to a pool
child) and without gossip, mingle and heartbeat (cluster events a single node does not
need); sleep scenario: the thread pool.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jobstats
from celery import Celery, group

REDIS_URL = os.environ["BENCH_REDIS_URL"]

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    worker_prefetch_multiplier=128,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


# Celery's task guide: "If you don't care about the results of a task, be sure to set the
# ignore_result option, as storing results wastes time and resources." Only `ping`, whose
# result the latency scenario waits for, keeps it.
@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    jobstats.noop()


@app.task(name="bench.sleep", ignore_result=True)
def sleep() -> None:
    jobstats.job_started()
    time.sleep(0.01)  # sync-only library: the thread pool gives it concurrency
    jobstats.job_finished()


@app.task(name="bench.ping")
def ping() -> int:
    return 1


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep}


class Client:
    bulk_api: str | None = "group(...).apply_async()"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def enqueue(self, task: str) -> None:
        TASKS[task].apply_async()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        signature = TASKS[task].s()
        group(signature.clone() for _ in range(count)).apply_async()

    async def roundtrip(self, timeout: float) -> None:
        # Redis result backend: get() waits on pub/sub, no polling.
        ping.apply_async().get(timeout=timeout)


def make_client() -> Client:
    return Client()
