"""SAQ (the queue of bench/peers/saq_app.py): connected in the lifespan,
`await queue.enqueue(...)` in an async endpoint.

Worker: `saq web_saq.settings`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import saq_app
import weblag
from fastapi import FastAPI

queue = saq_app.queue


async def work(ctx: dict[str, Any], *, enqueued_at: float) -> None:
    weblag.record(enqueued_at)


settings: dict[str, Any] = {**saq_app.settings, "functions": [work]}


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    await queue.connect()
    yield
    await queue.disconnect()


api = FastAPI(lifespan=lifespan)
weblag.install(api)


@api.post("/work")
async def endpoint() -> dict[str, bool]:
    await queue.enqueue("work", enqueued_at=time.time())
    weblag.enqueued()
    return {"ok": True}
