"""Backburner under test, on the store `$BENCH_BB_URL` names (sqlite, redis or postgresql).

Worker: `python -m backburner --log-level WARNING worker backburner_app:app --concurrency N`.
"""

from __future__ import annotations

import asyncio
import os

import jobstats

from backburner import Backburner

app = Backburner(os.environ["BENCH_BB_URL"])


# Explicit names: the client imports this module as `backburner_app`, the worker too, but a
# name should never depend on how a module was reached.
@app.task(name="bench.noop")
async def noop() -> None:
    jobstats.noop()


@app.task(name="bench.sleep")
async def sleep() -> None:
    jobstats.job_started()
    await asyncio.sleep(0.01)
    jobstats.job_finished()


@app.task(name="bench.ping")
async def ping() -> int:
    return 1


TASKS = {"noop": noop, "sleep": sleep}


class Client:
    bulk_api: str | None = "enqueue_many"

    async def start(self) -> None:
        await app.open()  # connects and migrates: not part of any timing

    async def close(self) -> None:
        await app.close()

    async def enqueue(self, task: str) -> None:
        await TASKS[task].enqueue()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        await TASKS[task].enqueue_many([() for _ in range(count)])

    async def roundtrip(self, timeout: float) -> None:
        job = await ping.enqueue()
        await job.result(timeout=timeout)


def make_client() -> Client:
    return Client()
