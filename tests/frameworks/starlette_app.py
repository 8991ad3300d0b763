"""A Starlette app using Backburner as the README shows: the embedded worker in the
lifespan, the job router at /bb and the dashboard at /dashboard, with Starlette's own
`AuthenticationMiddleware` (bearer tokens) deciding the role. Served by uvicorn in
tests/frameworks/test_starlette.py."""

from __future__ import annotations

from fw_jobs import TOKENS, crunch, jobs, token_of
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from backburner import starlette as bb


class Bearer(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        role = TOKENS.get(token_of(conn.headers.get("authorization")) or "")
        if role is None:
            return None
        return AuthCredentials([role]), SimpleUser(role)


def role_of(conn: HTTPConnection) -> bb.Role | None:
    scopes = conn.auth.scopes
    return "admin" if "admin" in scopes else "read" if "read" in scopes else None


async def report(request: Request) -> Response:
    job = await crunch.enqueue(int(request.query_params.get("steps", "3")))
    return bb.accepted(job, request)


api = Starlette(
    lifespan=bb.lifespan(jobs),
    middleware=[Middleware(AuthenticationMiddleware, backend=Bearer())],
    routes=[
        Route("/reports", report, methods=["POST"]),
        Mount("/bb", bb.jobs_asgi(jobs, role=role_of)),
        # Named: the dashboard's links must not depend on the host's route names.
        Mount("/dashboard", bb.dashboard_asgi(jobs, role=role_of), name="board"),
    ],
)
