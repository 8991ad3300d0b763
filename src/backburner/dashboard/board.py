"""The `Dashboard`: what one `dashboard_router` call was given (the app, auth, redaction,
options), its templates and history samples, and what every page does with them (URLs,
rendering, the redirect after an action, the checked form of an action).

The pages are module-level functions; a dashboard reaches them as the JSON API's context
does (see `backburner.fastapi.common`): its router binds it first in `dependencies`, then
checks the caller's role, and the pages take both as dependencies (`BoardDep`, `RoleDep`).
Two dashboards in one process share nothing."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.requests import HTTPConnection

from backburner.app import Backburner
from backburner.dashboard import security
from backburner.dashboard.leases import describe
from backburner.dashboard.presentation import ago, pretty, when
from backburner.dashboard.requests import form_body, here, notice, one
from backburner.dashboard.samples import Sampler
from backburner.dashboard.security import Role
from backburner.fastapi.common import attach, attached
from backburner.fastapi.origins import origin_allowed
from backburner.job import JobRecord, JobState
from backburner.task import Task

Auth = Callable[..., Role | Awaitable[Role]]
Redact = Callable[[JobRecord], JobRecord]
ACTIONS = ("retry", "cancel", "delete")


class Dashboard:
    def __init__(self, app: Backburner, *, auth: Auth | None, redact: Redact | None, name: str,
                 tasks: Sequence[Task[Any, Any]] | None, title: str, refresh: float,
                 stale_after: float, sampler: Sampler, failure_scan: int = 10_000) -> None:
        self.app = app
        self.auth = auth
        self.redact = redact
        self.name = name
        self.tasks = None if tasks is None else {t.name: t for t in tasks}
        self.title = title
        self.refresh = refresh
        self.stale_after = stale_after
        self.sampler = sampler
        self.failure_scan = failure_scan
        self.cookie = f"bb_csrf_{name}"
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("backburner.dashboard", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self.env.filters["when"] = when
        self.env.filters["ago"] = ago
        self.env.filters["pretty"] = pretty
        self.env.filters["stall"] = lambda stall: describe(stall, when, ago)

    def route(self, suffix: str) -> str:
        return f"{self.name}_{suffix}"

    def url(self, request: Request, route: str, query: dict[str, Any] | None = None,
            **params: Any) -> str:
        path = request.url_for(self.route(route), **params).path
        if query:
            path += "?" + urlencode(
                {k: v for k, v in query.items() if v not in (None, "", [])}, doseq=True)
        return path

    def root(self, request: Request) -> str:
        return self.url(request, "overview")

    def shown(self, record: JobRecord) -> JobRecord:
        return self.redact(record) if self.redact is not None else record

    def offered(self) -> dict[str, Task[Any, Any]]:
        return dict(self.app.tasks) if self.tasks is None else self.tasks

    def page(self, request: Request, template: str, role: Role, status: int = 200,
             **context: Any) -> HTMLResponse:
        token = request.cookies.get(self.cookie) or security.new_csrf_token()

        def url(route: str, query: dict[str, Any] | None = None, **params: Any) -> str:
            return self.url(request, route, query, **params)

        html = self.env.get_template(template).render(
            url=url, csrf=token, csrf_field=security.CSRF_FIELD, role=role,
            admin=role == "admin", title=self.title, refresh=self.refresh,
            notice=notice(request), here=here(request),
            states=[s.value for s in JobState], actions=ACTIONS, **context)
        response = HTMLResponse(html, status_code=status, headers=dict(security.SECURITY_HEADERS))
        if request.cookies.get(self.cookie) != token:
            response.set_cookie(self.cookie, token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path=self.root(request))
        return response

    def error(self, request: Request, role: Role, status: int, message: str) -> HTMLResponse:
        return self.page(request, "error.html", role, status, message=message)

    def back(self, request: Request, form: dict[str, list[str]], fallback: str,
             notice: str | None = None, done: int = 0, skipped: int = 0) -> RedirectResponse:
        """303 to the form's `next` (only a path inside the dashboard), with a notice."""
        target = security.safe_next(one(form, "next"), self.root(request)) or fallback
        if notice is not None:
            target += ("&" if "?" in target else "?") + urlencode(
                {"notice": notice, "done": done, "skipped": skipped})
        return RedirectResponse(target, 303, headers=dict(security.SECURITY_HEADERS))

    async def form(self, request: Request, role: Role) -> dict[str, list[str]]:
        """The posted form, once the caller may change things: admin role (else 403), a
        browser's `Origin` naming this host or none (else 403), then the CSRF token (missing
        or wrong: 403)."""
        if role != "admin":
            raise HTTPException(403, "read-only: this role cannot change anything")
        # The token alone is not enough: a page on another site that got hold of one (a
        # leaked page, a subdomain setting cookies) must still not post here. Same origin as
        # the library's routers; the dashboard takes no list of other allowed origins.
        if not origin_allowed(request, None):
            raise HTTPException(403, "cross-origin request refused: post from the dashboard's "
                                     "own pages")
        body = await form_body(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) \
            if kind == "application/x-www-form-urlencoded" else {}
        sent = one(form, security.CSRF_FIELD) or request.headers.get(security.CSRF_HEADER)
        if not security.csrf_matches(request.cookies.get(self.cookie), sent):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return form


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller's role, as the host app's `auth` answered it for this request."""

    role: Role


def current_board(connection: HTTPConnection) -> Dashboard:
    """Dependency: the dashboard of the router the request came through."""
    return attached(connection, Dashboard)


def viewer_role(connection: HTTPConnection) -> Role:
    """Dependency: the caller's role (checked by the router's `role_check`)."""
    return attached(connection, Viewer).role


BoardDep = Annotated[Dashboard, Depends(current_board)]
RoleDep = Annotated[Role, Depends(viewer_role)]


def role_check(auth: Auth | None) -> DependsParam:
    """The router dependency that asks the host app's `auth` for the caller's role (401
    and the like are its own), refuses a role the dashboard does not know (403), and keeps
    it for the pages (`RoleDep`). No `auth`: everyone is admin."""
    if auth is None:
        async def everyone_admin(connection: HTTPConnection) -> None:
            attach(connection, Viewer("admin"))

        return DependsParam(everyone_admin)

    async def checked_role(
        connection: HTTPConnection, role: Any = Depends(auth),  # noqa: B008
    ) -> None:
        if inspect.isawaitable(role):
            role = await role
        if role not in security.ROLES:
            raise HTTPException(403, "this user may not see the dashboard")
        attach(connection, Viewer(role))

    return DependsParam(checked_role)
