"""The app of tests/reliability/test_fleet_metrics.py: a web process (`api`, served by
uvicorn, no embedded worker) and `backburner worker fleet_app:jobs` processes share the
SQLite file named by FLEET_DB."""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI

from backburner import Backburner
from backburner.fastapi import backburner_lifespan, job_router, metrics_router

jobs = Backburner(f"sqlite:///{os.environ['FLEET_DB']}", poll_interval=0.2)


@jobs.task(name="ok", retries=0)
async def ok() -> str:
    await asyncio.sleep(0.02)
    return "fine"


@jobs.task(name="boom", retries=1, backoff=0, queue="risky")
async def boom() -> None:
    raise RuntimeError("kaboom")


@jobs.task(name="stranded", queue="orphan")
async def stranded() -> None:
    """On a queue no worker of the test serves: its jobs wait."""


api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False))
api.include_router(job_router(jobs, expose=[ok, boom, stranded]))
api.include_router(metrics_router(jobs))
