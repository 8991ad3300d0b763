"""Procrastinate (the app of bench/peers/procrastinate_app.py): `open_async()` in the
lifespan, `await work.defer_async(...)` in an async endpoint.

Worker: `procrastinate --app web_procrastinate.app worker`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import weblag
from fastapi import FastAPI
from procrastinate_app import app


@app.task(name="bench.work")
async def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    async with app.open_async():
        yield


api = FastAPI(lifespan=lifespan)
weblag.install(api)


@api.post("/work")
async def endpoint() -> dict[str, bool]:
    await work.defer_async(enqueued_at=time.time())
    weblag.enqueued()
    return {"ok": True}
