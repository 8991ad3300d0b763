"""arq (settings of bench/peers/arq_app.py): one `ArqRedis` pool opened in the lifespan,
`await pool.enqueue_job(...)` in an async endpoint.

Worker: `arq web_arq.WorkerSettings`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import arq_app
import weblag
from arq import create_pool
from fastapi import FastAPI, Request


async def work(ctx: dict[str, Any], enqueued_at: float) -> None:
    weblag.record(enqueued_at)


class WorkerSettings:
    # Not a subclass of arq_app.WorkerSettings: arq reads the settings class's own
    # __dict__, so inherited settings (the Redis database among them) would be ignored.
    functions: ClassVar[list[Any]] = [work]
    redis_settings = arq_app.REDIS
    max_jobs = arq_app.WorkerSettings.max_jobs
    poll_delay = arq_app.WorkerSettings.poll_delay


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    api.state.pool = await create_pool(arq_app.REDIS)
    yield
    await api.state.pool.aclose()


api = FastAPI(lifespan=lifespan)
weblag.install(api)


@api.post("/work")
async def endpoint(request: Request) -> dict[str, bool]:
    await request.app.state.pool.enqueue_job("work", time.time())
    weblag.enqueued()
    return {"ok": True}
