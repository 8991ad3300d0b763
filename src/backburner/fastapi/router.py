"""`job_router`: the HTTP API for jobs, bound to one Backburner app (no module globals). It
gathers the routes of each resource, each in its module: jobs (`jobs`), failure groups
(`failures`), flows (`flows`), live updates over SSE and WebSocket (`live`), enqueue of
exposed tasks (`enqueue`), schedules (`schedules`) and queues (`queues`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.params import Depends as DependsParam

from backburner.app import Backburner
from backburner.fastapi.common import RouterContext, bind, new_router
from backburner.fastapi.enqueue import add_enqueue_route
from backburner.fastapi.failures import add_failure_routes
from backburner.fastapi.flows import add_flow_routes
from backburner.fastapi.jobs import add_count_and_bulk_routes, add_job_routes
from backburner.fastapi.live import add_live_routes
from backburner.fastapi.origins import normalise_origins, origin_check
from backburner.fastapi.problems import close_methods
from backburner.fastapi.queues import add_queue_routes
from backburner.fastapi.schedules import add_schedule_routes
from backburner.task import Task


def job_router(
    app: Backburner,
    *,
    dependencies: Sequence[DependsParam] = (),
    write_dependencies: Sequence[DependsParam] = (),
    expose: Sequence[Task[Any, Any]] = (),
    name: str = "backburner",
    keepalive: float = 15.0,
    idempotency_ttl: float = 24 * 3600,
    allowed_origins: Sequence[str] | None = None,
    max_body_bytes: int = 1024 * 1024,
) -> APIRouter:
    """Routes for `app`'s jobs.

    - `dependencies` (e.g. your auth, raising 401) apply to every route, the SSE and
      WebSocket streams included.
    - `write_dependencies` apply, after those, only to the routes that change something:
      `POST /jobs/{id}/cancel`, `POST /jobs/{id}/retry`, `DELETE /jobs/{id}`,
      `POST /jobs/bulk/{action}`, `POST /failures/{fingerprint}/retry`,
      `POST /tasks/{name}`, the schedules' pause/resume/trigger
      and the queues' pause/resume (`POST /queues/{name}/pause`, `.../resume`). Give them
      the check of a write role (raising 403), so a read-only caller can watch jobs but not
      touch them.
    - `allowed_origins`: the browser origins (`"https://app.example.com"`) that may open the
      WebSocket and call the mutating routes. None (the default) allows the same origin
      only: a request whose `Origin` header names another host than its `Host` header is
      refused with 403 (the WebSocket before its handshake completes), which stops
      cross-site WebSocket hijacking and cross-site form posts riding on the user's
      cookies. `["*"]` allows any origin. Requests without `Origin` (not browsers) pass.
    - `expose`: tasks that may be enqueued over HTTP at `POST /tasks/{name}`, where an
      `Idempotency-Key` header makes a repeated request answer the same job for
      `idempotency_ttl` seconds; a body past `max_body_bytes` (1 MiB) is a 413.
    - `name` prefixes route names and operation ids, so two routers can live in one app.
    """
    context = RouterContext(app, name=name, keepalive=keepalive,
                            origins=normalise_origins(allowed_origins))
    # The binding first, so every later dependency (yours included) could read it.
    router = new_router([bind(context), *dependencies], tags=["jobs"])
    writes: list[DependsParam] = [*write_dependencies, origin_check(allowed_origins)]
    # The order is the routing order: /jobs/count and /jobs/bulk/{action} before
    # /jobs/{job_id} and /jobs/{job_id}/{verb}, which would take "count" and "bulk" as ids.
    add_count_and_bulk_routes(router, name=name, writes=writes)
    add_failure_routes(router, name=name, writes=writes)
    add_job_routes(router, name=name, writes=writes)
    add_flow_routes(router, name=name)
    add_live_routes(router, name=name)
    for task in expose:
        add_enqueue_route(router, task, name=name, ttl=idempotency_ttl, writes=writes,
                          max_body_bytes=max_body_bytes)
    add_schedule_routes(router, name=name, writes=writes)
    add_queue_routes(router, name=name, writes=writes)
    close_methods(router)
    return router
