"""Procrastinate on PostgreSQL (psycopg 3 pool), in the schema `$BENCH_PG_SCHEMA`.
Worker: `procrastinate --app procrastinate_app.app worker --concurrency N` (it LISTENs for
new jobs, so pick-up is not polled). Procrastinate keeps no results: the client waits for a
job by polling its status every 0.5 ms, its best case. Bulk: `batch_defer_async`."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import jobstats
from procrastinate import App, PsycopgConnector
from procrastinate.jobs import Status

SCHEMA = os.environ.get("BENCH_PG_SCHEMA", "bench_procrastinate")
# How often the client asks for the status of the job it waits for.
POLL_SECONDS = float(os.environ.get("BENCH_POLL_SECONDS", "0.0005"))

app = App(
    connector=PsycopgConnector(
        conninfo=os.environ["BENCH_PG_DSN"],
        # Its tables and functions live in their own schema, so the harness can drop them.
        kwargs={"options": f"-c search_path={SCHEMA}"},
    )
)


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


TASKS: dict[str, Any] = {"noop": noop, "sleep": sleep}
DONE = {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.ABORTED}


class Client:
    bulk_api: str | None = "batch_defer_async"

    async def start(self) -> None:
        await app.open_async()

    async def prepare(self) -> None:
        await app.schema_manager.apply_schema_async()

    async def close(self) -> None:
        await app.close_async()

    async def enqueue(self, task: str) -> None:
        await TASKS[task].defer_async()

    async def enqueue_bulk(self, task: str, count: int) -> None:
        await TASKS[task].batch_defer_async(*({} for _ in range(count)))

    async def roundtrip(self, timeout: float) -> None:
        job_id = await ping.defer_async()
        deadline = time.monotonic() + timeout
        while await app.job_manager.get_job_status_async(job_id) not in DONE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"procrastinate: job {job_id} not done within {timeout}s")
            await asyncio.sleep(POLL_SECONDS)


def make_client() -> Client:
    return Client()
