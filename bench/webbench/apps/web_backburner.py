"""Backburner on `$BENCH_BB_URL`, as its README shows for FastAPI: the lifespan opens the
store (`worker=False`: a separate `backburner worker` process runs the jobs).
`POST /background`: `DurableBackgroundTasks.add_task` (stored after the endpoint returns,
before the response); `POST /enqueue`: `await work.enqueue(...)`.

Worker: `python -m backburner worker web_backburner:jobs`."""

from __future__ import annotations

import os
import time

import weblag
from fastapi import FastAPI

from backburner import Backburner
from backburner.fastapi import DurableBackgroundTasks, backburner_lifespan

jobs = Backburner(os.environ["BENCH_BB_URL"])


@jobs.task(name="bench.work")
async def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False))
weblag.install(api)


@api.post("/background")
async def background(background_tasks: DurableBackgroundTasks) -> dict[str, bool]:
    background_tasks.add_task(work, time.time())
    weblag.enqueued()  # counted before the store (after the endpoint): a failure is a 503
    return {"ok": True}


@api.post("/enqueue")
async def enqueue() -> dict[str, bool]:
    await work.enqueue(time.time())
    weblag.enqueued()
    return {"ok": True}
