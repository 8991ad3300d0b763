"""Huey (`RedisHuey` of bench/peers/huey_redis_app.py): calling the task enqueues it, in a
`def` endpoint (threadpool; Huey's client is synchronous).

Consumer: `huey_consumer web_huey.huey -k thread -w 1`."""

from __future__ import annotations

import time

import weblag
from fastapi import FastAPI
from huey_redis_app import huey

api = FastAPI()
weblag.install(api)


@huey.task(name="bench.work")
def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


@api.post("/work")
def endpoint() -> dict[str, bool]:
    work(time.time())
    weblag.enqueued()
    return {"ok": True}
