"""taskiq (the broker of bench/peers/taskiq_app.py): `broker.startup()` in the lifespan,
`await work.kiq(...)` in an async endpoint.

Worker: `taskiq worker web_taskiq:broker --workers 1`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import weblag
from fastapi import FastAPI
from taskiq_app import broker


@broker.task(task_name="bench.work")
async def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    await broker.startup()
    yield
    await broker.shutdown()


api = FastAPI(lifespan=lifespan)
weblag.install(api)


@api.post("/work")
async def endpoint() -> dict[str, bool]:
    await work.kiq(time.time())
    weblag.enqueued()
    return {"ok": True}
