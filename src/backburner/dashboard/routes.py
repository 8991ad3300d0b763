"""The dashboard's router: server-rendered pages over one Backburner app, and the actions
that change jobs, queues and schedules. Each page lives in `backburner.dashboard.pages`;
the `Dashboard` the factory builds (templates, history samples, options) reaches them through
the router's dependencies (see `backburner.dashboard.board`): two dashboards in one process
share nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from backburner.app import Backburner
from backburner.dashboard.board import Auth, Dashboard, Redact, role_check
from backburner.dashboard.pages.bulk import add_bulk_routes
from backburner.dashboard.pages.enqueue import add_enqueue_routes
from backburner.dashboard.pages.failures import add_failure_routes
from backburner.dashboard.pages.job import add_job_routes
from backburner.dashboard.pages.jobs import add_listing_routes
from backburner.dashboard.pages.overview import add_overview_routes
from backburner.dashboard.pages.queues import add_queue_routes
from backburner.dashboard.pages.schedules import add_schedule_routes
from backburner.dashboard.pages.workers import add_worker_routes
from backburner.dashboard.samples import Sampler
from backburner.fastapi.common import bind
from backburner.task import Task


def dashboard_router(
    app: Backburner,
    *,
    auth: Auth | None = None,
    redact: Redact | None = None,
    prefix: str = "",
    name: str = "dashboard",
    tasks: Sequence[Task[Any, Any]] | None = None,
    title: str = "Backburner",
    refresh: float = 5.0,
    sample_interval: float = 5.0,
    history_minutes: float = 30.0,
    stale_after: float = 60.0,
    failure_scan: int = 10_000,
) -> APIRouter:
    """The dashboard's routes for `app`, under `prefix` (the router's own; the host app's
    mount path and root_path are honoured too).

    - `auth`: a FastAPI dependency (sync or async, with its own parameters: headers, cookies,
      `Security(...)`) answering the caller's role, `"admin"` or `"read"`, and raising
      `HTTPException(401)` for no credentials. A read role sees every page; every action
      answers it 403. None: everyone is admin (keep such a dashboard on loopback).
    - `redact`: applied to every job record before it is shown or exported (hide secrets
      in arguments and results).
    - `tasks`: the tasks the enqueue form offers (default: every task of the app).
    - `refresh`: seconds between live refreshes of a visible page; `sample_interval` and
      `history_minutes`: how often the overview samples the store (at most; never sooner
      than 20 times as long as the last sample took), and how long it keeps samples;
      `stale_after`: seconds without a heartbeat after which a worker is not alive;
      `failure_scan`: how many of the newest failed jobs the Failures page groups.
    """
    board = Dashboard(app, auth=auth, redact=redact, name=name, tasks=tasks, title=title,
                      refresh=refresh, stale_after=stale_after, failure_scan=failure_scan,
                      sampler=Sampler(app, interval=sample_interval,
                                      window=history_minutes * 60))
    # The board first, then the caller's role: every page takes both (BoardDep, RoleDep),
    # and the role check (the host app's auth) guards every route, static files included.
    router = APIRouter(prefix=prefix, include_in_schema=False,
                       dependencies=[bind(board), role_check(auth)])
    # No path here shadows another: the order is only that of the pages.
    add_overview_routes(router, name=name, bare=bool(prefix))
    add_listing_routes(router, name=name)
    add_job_routes(router, name=name)
    add_bulk_routes(router, name=name)
    add_failure_routes(router, name=name)
    add_queue_routes(router, name=name)
    add_worker_routes(router, name=name)
    add_schedule_routes(router, name=name)
    add_enqueue_routes(router, name=name)
    return router


def mount_dashboard(api: FastAPI, app: Backburner, prefix: str = "/dashboard",
                    **options: Any) -> APIRouter:
    """Add the dashboard to a FastAPI app at `prefix`; options as for `dashboard_router`."""
    router = dashboard_router(app, prefix=prefix.rstrip("/"), **options)
    api.include_router(router)
    return router
