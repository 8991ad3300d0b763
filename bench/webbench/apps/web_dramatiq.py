"""Dramatiq (the Redis broker of bench/peers/dramatiq_app.py): `work.send(...)` in a `def`
endpoint (threadpool; Dramatiq's client is synchronous).

Worker: bench/peers/dramatiq_worker.py after importing this module (so the actor exists)."""

from __future__ import annotations

import time

import dramatiq
import weblag
from dramatiq_app import broker
from fastapi import FastAPI

api = FastAPI()
weblag.install(api)


@dramatiq.actor(actor_name="bench_work", queue_name="bench", broker=broker)
def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


@api.post("/work")
def endpoint() -> dict[str, bool]:
    work.send(time.time())
    weblag.enqueued()
    return {"ok": True}
