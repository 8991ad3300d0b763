"""A Litestar app using Backburner as the README shows: `BackburnerPlugin` for the embedded
worker, the job router at /bb and the dashboard at /dashboard, behind a Litestar guard
(a bearer token, else 401) and a role from the same token. Served by uvicorn in
tests/frameworks/test_litestar.py."""

from __future__ import annotations

from typing import Any

from fw_jobs import TOKENS, crunch, jobs, token_of
from litestar import Litestar, Request, Response, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from backburner.litestar import BackburnerPlugin
from backburner.starlette import Role


def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if token_of(connection.headers.get("authorization")) not in TOKENS:
        raise NotAuthorizedException("a bearer token is required")


def role_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Role | None:
    token = token_of(connection.headers.get("authorization")) or ""
    role = TOKENS.get(token)
    return "admin" if role == "admin" else "read" if role == "read" else None


plugin = BackburnerPlugin(jobs, jobs_path="/bb", dashboard_path="/dashboard",
                          guards=[signed_in], role=role_of)


@post("/reports", status_code=202)
async def report(request: Request[Any, Any, Any], steps: int = 3) -> Response[dict[str, Any]]:
    return plugin.accepted(await crunch.enqueue(steps), request)


api = Litestar([report], plugins=[plugin])
