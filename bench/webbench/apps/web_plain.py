"""No job store: the `noop` row (`POST /noop` returns at once) and FastAPI's in-memory
`BackgroundTasks` (`POST /work`: the task runs in this process after the response)."""

from __future__ import annotations

import time

import weblag
from fastapi import BackgroundTasks, FastAPI

api = FastAPI()
weblag.install(api)


async def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


@api.post("/noop")
async def noop() -> dict[str, bool]:
    return {"ok": True}


@api.post("/work")
async def endpoint(background_tasks: BackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(work, time.time())
    weblag.enqueued()
    return {"ok": True}
