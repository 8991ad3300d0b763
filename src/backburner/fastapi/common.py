"""What the library's routers share: how a route reaches the app it was built for, the
503 for an unreachable store, the 202 for a job an endpoint enqueued, and the documented
error answers.

Endpoints are module-level functions; the Backburner app (and the options of the factory
call: route names, keep-alive, allowed origins) reach them through a dependency:

    async def get_job(job_id: str, app: AppDep) -> JobOut: ...

How the dependency finds the right app: each factory call puts `bind(context)` first in its
router's `dependencies`, and that dependency attaches the context to the request's ASGI
scope; `get_app` and `router_context` read it back. Why this way:
- no global state: two routers over two apps in one FastAPI app each answer with their own
  (a request goes through one route, which carries the one binding of its factory call);
- a router's `dependencies` are copied into each route when it is added, so the binding
  survives `include_router` (any prefix, nesting, FastAPI version), unlike an attribute on a
  route object (0.138 copies routes on inclusion) or `dependency_overrides` (one per app);
- FastAPI solves a route's `dependencies=` (the router's first) before the endpoint's own
  parameters: the order every auth dependency relies on to run before the endpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from backburner.app import Backburner
from backburner.errors import BackendUnavailableError
from backburner.fastapi.origins import Origins
from backburner.fastapi.problems import VALIDATION_PROBLEM, ProblemRoute, problem
from backburner.fastapi.schemas import JobAccepted
from backburner.handle import Job

T = TypeVar("T")
RETRY_AFTER_SECONDS = 1
"""`Retry-After` of a 202: when a poller should first ask for the job's state."""
Responses = dict[int | str, dict[str, Any]]
UNAVAILABLE: Responses = {503: problem("the job store is unreachable")}
JOB_NOT_FOUND: Responses = {404: problem("no job with this id")}
_SCOPE_KEY = "backburner.bound"


def forbidden(what: str) -> Responses:
    """The 403 of a write route: a role that may not write, or a foreign browser origin."""
    return {403: problem(f"not allowed to change {what}, or a foreign origin")}


# -- binding a factory call's context to its routes ------------------------------------------
class Binding:
    """A router (or route) dependency that attaches `value` to each request it serves, found
    again by `attached(connection, type(value))`. One per factory call."""

    def __init__(self, value: object) -> None:
        self.value = value

    async def __call__(self, connection: HTTPConnection) -> None:
        attach(connection, self.value)


def bind(value: object) -> DependsParam:
    """`Depends` of a `Binding`: put it first in the router's (or route's) `dependencies`."""
    return DependsParam(Binding(value))


def attach(connection: HTTPConnection, value: object) -> None:
    """Keep `value` for the rest of this request, under its type."""
    connection.scope.setdefault(_SCOPE_KEY, {})[type(value)] = value


def attached(connection: HTTPConnection, kind: type[T]) -> T:
    """The `kind` attached to this request; a route without one was not built by a factory
    of this library (a programming error, hence no HTTP answer)."""
    value = connection.scope.get(_SCOPE_KEY, {}).get(kind)
    if not isinstance(value, kind):
        raise RuntimeError(f"no {kind.__name__} bound to this route: build it with one of "
                           "backburner's router factories")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class RouterContext:
    """What one call of `job_router` (`queue_router`, `schedule_router`) was given."""

    app: Backburner
    name: str = "backburner"
    """Prefixes route names and operation ids."""
    keepalive: float = 15.0
    """Seconds of silence before a live stream sends a keep-alive."""
    origins: Origins = None
    """The browser origins that may open the WebSocket (see `origins.normalise_origins`)."""

    @property
    def status_route(self) -> str:
        """The name of the job status route (`Location` of a 202)."""
        return f"{self.name}_get_job"


def router_context(connection: HTTPConnection) -> RouterContext:
    """Dependency: the context of the router the request came through."""
    return attached(connection, RouterContext)


def get_app(context: Annotated[RouterContext, Depends(router_context)]) -> Backburner:
    """Dependency: the Backburner app of the router the request came through."""
    return context.app


ContextDep = Annotated[RouterContext, Depends(router_context)]
AppDep = Annotated[Backburner, Depends(get_app)]


def new_router(dependencies: Sequence[DependsParam] = (), *, tags: list[Any] | None = None,
               ) -> APIRouter:
    """A router whose errors leave as problems and whose 422 is documented as one."""
    return APIRouter(dependencies=list(dependencies), tags=tags, route_class=ProblemRoute,
                     responses={422: VALIDATION_PROBLEM})


# -- answers -----------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def store_access() -> AsyncIterator[None]:
    """An unreachable store is a 503 with Retry-After, never a 500."""
    try:
        yield
    except BackendUnavailableError as exc:
        raise HTTPException(503, f"the job store is unavailable: {exc}",
                            headers={"Retry-After": "5"}) from None


def accepted(
    job: Job[Any], request: Request, *, status_route: str = "backburner_get_job"
) -> JSONResponse:
    """A 202 Accepted for a job an endpoint enqueued: `Location` of its status resource,
    `Retry-After` for pollers, and the URLs of its live streams in the body."""
    status_url = str(request.url_for(status_route, job_id=job.id))
    events_url = f"{status_url}/events"
    ws_url = f"{status_url}/ws".replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    body = JobAccepted(id=job.id, task=job.task_name or "", state=job.initial_state,
                       status_url=status_url, events_url=events_url, websocket_url=ws_url)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=202,
        headers={"Location": status_url, "Retry-After": str(RETRY_AFTER_SECONDS)},
    )
