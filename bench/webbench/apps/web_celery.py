"""Celery (the broker and settings of bench/peers/celery_app.py): `work.delay(...)` in a
`def` endpoint (FastAPI runs it in its threadpool; Celery's client is synchronous).

Worker: `celery -A web_celery worker --pool solo ...` (the peers benchmark's settings)."""

from __future__ import annotations

import time

import weblag
from celery_app import app
from fastapi import FastAPI

api = FastAPI()
weblag.install(api)


@app.task(name="bench.work", ignore_result=True)
def work(enqueued_at: float) -> None:
    weblag.record(enqueued_at)


@api.post("/work")
def endpoint() -> dict[str, bool]:
    work.delay(time.time())
    weblag.enqueued()
    return {"ok": True}
