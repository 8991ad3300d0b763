"""`create_app`: the FastAPI app of the demo, every seed scenario on one Backburner app.

    uvicorn --factory examples.demo.web:create_app        # settings from the environment
    backburner worker examples.demo.worker:create_jobs    # separate worker processes

With DEMO_EMBEDDED_WORKER=0 the web process only enqueues and reads; workers run apart.
Without SMTP_HOST the web process runs the demo's SMTP sink and records its address in
DEMO_DATA_DIR, so those workers deliver to it and `/mails` lists what they sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from backburner.dashboard import mount_dashboard
from backburner.fastapi import (
    backburner_lifespan,
    install_problem_details,
    job_router,
    metrics_router,
)
from examples.demo.local_sink import local_sink
from examples.demo.routes import basics, deps, email, pages, tracking, upload, webhooks
from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink
from examples.demo.tasks import build_jobs


def create_app(
    settings: Settings | None = None,
    *,
    sink: SmtpSink | None = None,
    worker: bool | None = None,
    concurrency: int = 20,
    worker_options: Mapping[str, Any] | None = None,
) -> FastAPI:
    """`sink`: the local SMTP server whose mails `/mails` lists, owned by the caller; without
    one and without SMTP_HOST the app runs its own while it runs (`examples.demo.local_sink`:
    its address goes to the data directory, where separate workers find it). `worker`: run
    an embedded worker (default: DEMO_EMBEDDED_WORKER, on); `worker_options` go to it (e.g.
    `grace`)."""
    settings = settings if settings is not None else Settings.from_env()
    jobs, tasks = build_jobs(settings)
    embedded = settings.embedded_worker if worker is None else worker
    backburner = backburner_lifespan(
        jobs, worker=embedded,
        **{"concurrency": concurrency, "lease": settings.worker_lease, **(worker_options or {})},
    )
    own_sink = sink is None and not settings.smtp.configured

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with contextlib.AsyncExitStack() as stack:
            if own_sink:
                # Before the worker starts, so its first mail finds the sink recorded.
                app.state.demo_sink = await stack.enter_async_context(local_sink(settings))
            async with backburner(app) as state:
                yield state

    api = FastAPI(
        title="Backburner demo",
        description="Every scenario of the seed tutorials, on durable Backburner jobs.",
        lifespan=lifespan,
    )
    api.state.demo_tasks = tasks
    api.state.demo_sink = sink
    api.include_router(job_router(jobs, expose=[tasks.long_task]))
    api.include_router(metrics_router(jobs))  # S4: Prometheus scrapes /metrics
    # S4 for people. The demo has no auth (it listens on loopback), so everyone is admin;
    # an app with users passes `auth=` (see the README's Dashboard section).
    mount_dashboard(api, jobs, prefix="/dashboard", title="Backburner demo")
    api.include_router(basics.router(tasks))
    api.include_router(tracking.router(tasks))
    api.include_router(deps.router())
    api.include_router(email.router(tasks))
    api.include_router(webhooks.router(tasks))
    api.include_router(upload.router(tasks))
    api.include_router(pages.router(tasks))
    api.mount("/static", StaticFiles(directory=pages.STATIC), name="static")

    # Every error as the library's routers answer it (RFC 9457 problems): our own
    # endpoints' HTTPExceptions and validation errors, a store that is down (503) and
    # arguments a task refuses (422), unknown paths and methods (404, 405 with Allow).
    install_problem_details(api)

    return api

