"""The web process of R29: the job router of `rel_app` (rel.work exposed) with no embedded
worker, served by uvicorn while the PostgreSQL primary behind it fails over. The URL comes
from RELIABILITY_DB (a multi-host URL with target_session_attrs=read-write).

Run as `python -m uvicorn r29_web:api --port PORT` from tests/reliability."""

from __future__ import annotations

import os

from fastapi import FastAPI
from rel_app import build_app
from rel_harness import DB_ENV

from backburner.fastapi import backburner_lifespan, job_router

jobs = build_app(os.environ[DB_ENV])
api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False))
api.include_router(job_router(jobs, expose=[jobs.get_task("rel.work")]))
