"""Backburner in a Starlette app: the embedded worker in the lifespan, and the job router and
the dashboard as ASGI applications to `Mount`.

    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from backburner import starlette as bb

    api = Starlette(lifespan=bb.lifespan(jobs), routes=[
        Route("/reports", report, methods=["POST"]),       # returns bb.accepted(job, request)
        Mount("/bb", bb.jobs_asgi(jobs, role=role_of)),    # /bb/jobs/{id}, /bb/jobs/{id}/events
        Mount("/dashboard", bb.dashboard_asgi(jobs, role=role_of)),
    ])

The mounted applications are the FastAPI ones (`backburner.fastapi.job_router`,
`backburner.dashboard.dashboard_router`) inside a small FastAPI sub-application each: the
same routes, answers, problem details and safety checks as in a FastAPI app, written once.
So this adapter needs the `fastapi` extra (the dashboard the `dashboard` one); the core
imports neither Starlette nor FastAPI.

Authentication is the host app's: `role(connection)` answers `"admin"`, `"read"` or None
for the caller of each request (read `connection.user` / `connection.auth` set by Starlette's
`AuthenticationMiddleware` on the host app, a cookie, a header). None is a 401, a read role
may watch but every change is a 403, and an admin may do everything; no `role`: everyone is
admin (keep that on loopback).

`accepted(job, request)` (FastAPI's) answers a 202 whose `Location` is the job in the mounted
router: Starlette's `url_for` finds its routes through an unnamed `Mount`; under
`Mount("/bb", ..., name="bb")` pass `status_route="bb:backburner_get_job"`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, cast

from fastapi import Depends, FastAPI, HTTPException
from fastapi.params import Depends as DependsParam
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from backburner.app import Backburner
from backburner.fastapi.common import accepted
from backburner.fastapi.lifespan import backburner_lifespan

__all__ = ["MountedApp", "Role", "RoleOf", "accepted", "dashboard_asgi", "jobs_asgi", "lifespan"]

Role = Literal["admin", "read"]
RoleOf = Callable[[HTTPConnection], Role | Awaitable[Role | None] | None]
"""The caller's role for a request (an `HTTPConnection`: the `Request`, or the `WebSocket`
of `/jobs/{id}/ws`); None when there are no (valid) credentials."""
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[Any]]


def lifespan(app: Backburner, *, worker: bool = True, wrap: Lifespan | None = None,
             **worker_options: Any) -> Lifespan:
    """`Starlette(lifespan=lifespan(jobs))`: opens the store, runs an embedded worker (unless
    `worker=False`) and stops it cleanly on shutdown (running jobs get the worker's grace
    period, then are released); `wrap` is the app's own lifespan, entered inside ours.
    Exactly `backburner_lifespan`, which only uses `app.state` (Starlette's own), so it
    is called here rather than written twice; the casts only restate its parameter type."""
    made = backburner_lifespan(app, worker=worker, wrap=cast(Any, wrap), **worker_options)
    return cast(Lifespan, made)


class MountedApp:
    """A FastAPI sub-application that is its own root at the path it is mounted at: links,
    redirects and `Location` headers it builds carry the host's `root_path` and the mount
    prefix, whatever the host (a named `Mount`, Litestar) does with the scope."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api

    @property
    def routes(self) -> list[BaseRoute]:
        """Starlette's `url_for` looks into an unnamed `Mount` through this: the host's
        endpoints can name the router's routes (`accepted(job, request)` does)."""
        return self.api.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            # A copy: the host's scope stays as it was. Starlette's `url_for` builds on
            # `app_root_path` with the outermost router; ours should build on the mount.
            scope = dict(scope)
            scope["app_root_path"] = scope.get("root_path", "")
            scope.pop("router", None)
        await self.api(scope, receive, send)


def role_dependency(role: RoleOf) -> DependsParam:
    """The FastAPI dependency answering the caller's role from `role`: 401 for None, 403 for
    a value that is not a role. Cached per request by FastAPI, so `role` runs once."""

    async def caller_role(connection: HTTPConnection) -> str:
        value = role(connection)
        if inspect.isawaitable(value):
            value = await value
        if value is None:
            raise HTTPException(401, "credentials required")
        if value not in ("admin", "read"):
            raise HTTPException(403, "this caller may not use Backburner's routes")
        return value

    return DependsParam(caller_role)


def jobs_asgi(app: Backburner, *, role: RoleOf | None = None, **router_options: Any,
              ) -> MountedApp:
    """The job router (`backburner.fastapi.job_router`: status, control, `POST /tasks/{name}`
    for `expose=[...]`, SSE at `/jobs/{id}/events`, WebSocket, schedules, queues) as an
    ASGI app to `Mount`. `role`: see the module; a read role gets 403 on every change.
    Other options go to `job_router`; its errors are problem details, unknown paths under
    the mount too. `/openapi.json` under the mount describes it."""
    from backburner.fastapi.problems import install_problem_details
    from backburner.fastapi.router import job_router

    if role is not None:
        if "dependencies" in router_options or "write_dependencies" in router_options:
            raise TypeError("jobs_asgi: give either role= or FastAPI dependencies, not both")
        reader = role_dependency(role)
        router_options["dependencies"] = [reader]
        router_options["write_dependencies"] = [DependsParam(_admin_only(reader))]
    api = FastAPI(title="Backburner jobs", docs_url=None, redoc_url=None)
    api.include_router(job_router(app, **router_options))
    install_problem_details(api)
    return MountedApp(api)


def dashboard_asgi(app: Backburner, *, role: RoleOf | None = None, **dashboard_options: Any,
                   ) -> MountedApp:
    """The dashboard (`backburner.dashboard.dashboard_router`) as an ASGI app to `Mount`.
    `role`: see the module (a read role sees every page, every action is a 403); other
    options (`redact`, `tasks`, `title`...) go to `dashboard_router`."""
    from backburner.dashboard.routes import dashboard_router

    if role is not None:
        if "auth" in dashboard_options:
            raise TypeError("dashboard_asgi: give either role= or auth=, not both")
        dashboard_options["auth"] = role_dependency(role).dependency
    api = FastAPI(title="Backburner dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None)
    api.include_router(dashboard_router(app, **dashboard_options))
    return MountedApp(api)


def _admin_only(reader: DependsParam) -> Callable[..., None]:
    def admin_only(role: str = Depends(reader.dependency)) -> None:
        if role != "admin":
            raise HTTPException(403, "read-only: this role cannot change anything")

    return admin_only
