"""The web process of R18: the job router of `rel_app` with no embedded worker and a 1 s
keep-alive, served by uvicorn to many progress subscribers (SSE and WebSocket). The store
comes from RELIABILITY_DB.

Run as `python -m uvicorn r18_web:api --port PORT` from tests/reliability."""

from __future__ import annotations

import os

from fastapi import FastAPI
from rel_app import build_app
from rel_harness import DB_ENV

from backburner.fastapi import backburner_lifespan, job_router

jobs = build_app(os.environ[DB_ENV])
api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False))
api.include_router(job_router(jobs, keepalive=1.0))
