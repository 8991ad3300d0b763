"""Backburner in a Litestar app: the embedded worker in the lifespan, and the job router and
the dashboard mounted as ASGI apps, behind the app's own guards.

    from litestar import Litestar
    from backburner.litestar import BackburnerPlugin

    plugin = BackburnerPlugin(jobs, jobs_path="/bb", dashboard_path="/dashboard",
                              guards=[signed_in], role=role_of)
    api = Litestar([report], plugins=[plugin])  # report returns plugin.accepted(job, request)

or piece by piece: `Litestar(lifespan=[lifespan(jobs)], route_handlers=[jobs_mount(jobs,
"/bb"), dashboard_mount(jobs, "/dashboard")])`.

The mounted apps are the FastAPI router and dashboard (see `backburner.starlette`), so every
route, answer and safety check is the one FastAPI apps get, the live updates included:
`GET <jobs_path>/jobs/{id}/events` streams Server-Sent Events through the mount as they are
written (Litestar passes `send` through), so there is no second, Litestar-native SSE
endpoint with its own wire format to keep in step. Needs the `litestar` extra.

Auth: `guards` are Litestar guards on the mounts, run before the mounted app (raise
`NotAuthorizedException` for a 401, `PermissionDeniedException` for a 403);
`role(connection)` (Litestar's `ASGIConnection`) answers `"admin"`, `"read"` or None per
request: None is a 401, a read role watches but every change is a 403. Without `role`,
whoever the guards let in is admin.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from litestar import Litestar, Request, Response
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.plugins import InitPluginProtocol
from litestar.types import Guard, Receive, Scope, Send

from backburner.app import Backburner
from backburner.fastapi.common import RETRY_AFTER_SECONDS
from backburner.fastapi.lifespan import backburner_lifespan
from backburner.fastapi.schemas import JobAccepted
from backburner.handle import Job
from backburner.starlette import MountedApp, Role, dashboard_asgi, jobs_asgi

__all__ = ["BackburnerPlugin", "RoleOf", "accepted", "dashboard_mount", "jobs_mount",
           "lifespan"]

RoleOf = Callable[[ASGIConnection[Any, Any, Any, Any]], Role | Awaitable[Role | None] | None]
"""The caller's role for a request, from Litestar's view of it; None: no credentials."""
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[Any]]
_CONNECTION = "backburner.litestar.connection"
"""Where the mount keeps Litestar's connection for `role`: the mounted app rewrites the
scope (its `app`, path and root path), so it is made before."""


def lifespan(app: Backburner, *, worker: bool = True, **worker_options: Any) -> Lifespan:
    """`Litestar(lifespan=[lifespan(jobs)])`: opens the store, runs an embedded worker (unless
    `worker=False`) and stops it cleanly on shutdown. `backburner_lifespan` itself, which
    only sets `app.state.backburner` (Litestar's `State` takes attributes too)."""
    return cast(Lifespan, backburner_lifespan(app, worker=worker, **worker_options))


def jobs_mount(app: Backburner, path: str = "/bb", *, role: RoleOf | None = None,
               guards: Sequence[Guard] = (), name: str = "backburner",
               **router_options: Any) -> ASGIRouteHandler:
    """The job router mounted at `path` (`<path>/jobs/{id}`, `<path>/jobs/{id}/events`...);
    options as for `backburner.fastapi.job_router`. The handler is named `<name>_jobs`,
    which `accepted` looks up."""
    mounted = jobs_asgi(app, role=_native(role), name=name, **router_options)
    return _mount(mounted, path, guards=guards, name=f"{name}_jobs")


def dashboard_mount(app: Backburner, path: str = "/dashboard", *, role: RoleOf | None = None,
                    guards: Sequence[Guard] = (), name: str = "dashboard",
                    **dashboard_options: Any) -> ASGIRouteHandler:
    """The dashboard mounted at `path`; options as for `dashboard_router`. A read role sees
    every page, every action answers it 403."""
    mounted = dashboard_asgi(app, role=_native(role), name=name, **dashboard_options)
    return _mount(mounted, path, guards=guards, name=f"{name}_dashboard")


def accepted(job: Job[Any], request: Request[Any, Any, Any], *, name: str = "backburner",
             ) -> Response[dict[str, Any]]:
    """A 202 for a job an endpoint enqueued, as `backburner.fastapi.accepted` makes it:
    `Location` of its status in the router mounted by `jobs_mount(..., name=name)`,
    `Retry-After`, and the URLs of its live streams in the body."""
    mount = request.app.route_reverse(f"{name}_jobs").rstrip("/")
    status_url = f"{str(request.base_url).rstrip('/')}{mount}/jobs/{job.id}"
    ws_url = f"{status_url}/ws".replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    body = JobAccepted(id=job.id, task=job.task_name or "", state=job.initial_state,
                       status_url=status_url, events_url=f"{status_url}/events",
                       websocket_url=ws_url)
    return Response(body.model_dump(mode="json"), status_code=202,
                    headers={"Location": status_url, "Retry-After": str(RETRY_AFTER_SECONDS)})


class BackburnerPlugin(InitPluginProtocol):
    """Everything at once: the lifespan (first, so the app's own lifespans find the store
    open), the job router at `jobs_path` and the dashboard at `dashboard_path` (None: not
    mounted), both behind `guards` and `role`."""

    def __init__(self, app: Backburner, *, worker: bool = True,
                 jobs_path: str | None = "/bb", dashboard_path: str | None = "/dashboard",
                 role: RoleOf | None = None, guards: Sequence[Guard] = (),
                 router_options: Mapping[str, Any] | None = None,
                 dashboard_options: Mapping[str, Any] | None = None,
                 **worker_options: Any) -> None:
        self.app = app
        self.worker = worker
        self.worker_options = worker_options
        self.handlers: list[ASGIRouteHandler] = []
        self.name = (router_options or {}).get("name", "backburner")
        if jobs_path is not None:
            self.handlers.append(jobs_mount(app, jobs_path, role=role, guards=guards,
                                            **(router_options or {})))
        if dashboard_path is not None:
            self.handlers.append(dashboard_mount(app, dashboard_path, role=role, guards=guards,
                                                 **(dashboard_options or {})))

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        ours = lifespan(self.app, worker=self.worker, **self.worker_options)
        app_config.lifespan = [ours, *app_config.lifespan]
        app_config.route_handlers = [*app_config.route_handlers, *self.handlers]
        return app_config

    def accepted(self, job: Job[Any], request: Request[Any, Any, Any],
                 ) -> Response[dict[str, Any]]:
        """`accepted` for this plugin's router."""
        return accepted(job, request, name=self.name)


def _mount(mounted: MountedApp, path: str, *, guards: Sequence[Guard], name: str,
           ) -> ASGIRouteHandler:
    prefix = "/" + path.strip("/") if path.strip("/") else ""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar hands a mounted app the path under the mount (with a trailing slash
        # added) and the app's root path; the mounted app, like one under Starlette's
        # `Mount`, wants the full path and the mount in its root path, to build its links.
        inner: dict[str, Any] = dict(scope)
        inner[_CONNECTION] = ASGIConnection[Any, Any, Any, Any](scope, receive)
        root = scope.get("root_path", "") + prefix
        inner["root_path"] = root
        inner["path"] = root + (scope["path"].rstrip("/") or "/")
        await mounted(inner, cast(Any, receive), cast(Any, send))

    # copy_scope (Litestar 2.15+; before, an unknown option lands in `opt`): the handler
    # copies the scope itself, so either way Litestar's stays as it was.
    return asgi(prefix or "/", is_mount=True, copy_scope=True, guards=list(guards),
                name=name)(handler)


def _native(role: RoleOf | None) -> Callable[..., Awaitable[Role | None]] | None:
    """`role` for the mounted app: called with Litestar's connection, and a Litestar
    `HTTPException` it raises answered as such (not a 500)."""
    if role is None:
        return None
    from fastapi import HTTPException
    from starlette.requests import HTTPConnection

    async def starlette_role(connection: HTTPConnection) -> Role | None:
        native = connection.scope[_CONNECTION]
        try:
            value = role(native)
            if inspect.isawaitable(value):
                value = await value
        except LitestarHTTPException as exc:
            raise HTTPException(exc.status_code, exc.detail, headers=exc.headers) from None
        return value

    return starlette_role
