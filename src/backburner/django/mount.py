"""The dashboard and the job router in a Django project, behind Django's own login.

    from backburner.django.mount import dashboard_urls, jobs_urls

    urlpatterns = [
        path("jobs/api/", include(jobs_urls())),      # JSON: /jobs/api/jobs/{id}, ...
        path("jobs/", include(dashboard_urls())),     # HTML dashboard
    ]

(or `path("jobs/", include("backburner.django.urls"))` for both with the defaults).

They are the same ASGI applications as in a Starlette app (`backburner.starlette.jobs_asgi`
and `dashboard_asgi`), served from a Django view through a2wsgi's ASGIMiddleware, so they
work wherever Django views do: a WSGI server (gunicorn sync workers) or an ASGI one. The
view gives the mounted app the prefix it was matched at (SCRIPT_NAME, the rest as PATH_INFO),
so links, redirects and `Location` headers carry it.

Who may do what is decided in the view from `request.user` (Django's
AuthenticationMiddleware): `role(request)` answers "admin" (everything), "read" (every page;
every change a 403) or None. None for an anonymous user is a redirect to settings.LOGIN_URL
on the dashboard and a 401 on the JSON router; for a logged-in user it is a 403. The default,
`staff_role`: superusers are admins, other active staff readers, everyone else None. The
view is exempt from Django's CSRF middleware because both apps check writes themselves
(the browser's Origin, and the dashboard's own CSRF token).

Not through this bridge: WebSockets (`/jobs/{id}/ws`). Server-sent events
(`/jobs/{id}/events`) stream, but hold a sync worker for the stream's length (gunicorn's
`--timeout` ends it): poll `GET /jobs/{id}` from WSGI instead.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, cast

from a2wsgi import ASGIMiddleware

from backburner.app import Backburner

Role = Literal["admin", "read"]
RoleOfRequest = Callable[[Any], Role | None]
"""The caller's role for a Django `HttpRequest`; None: not allowed."""

_ENVIRON_KEY = "backburner.role"
"""Where the view leaves the role it decided, in the environ the mounted app gets (a2wsgi
passes it on as scope["wsgi_environ"]): no header a client could send."""
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade",
})
"""Headers a WSGI application may not set (PEP 3333; gunicorn refuses them)."""


def staff_role(request: Any) -> Role | None:
    """The default role: an active superuser is an admin, other active staff readers."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_active", False) or not user.is_staff:
        return None
    return "admin" if user.is_superuser else "read"


def dashboard_urls(app: Backburner | None = None, *, role: RoleOfRequest = staff_role,
                   **dashboard_options: Any) -> list[Any]:
    """URL patterns serving the dashboard, to `include()` at any prefix. `app`: default
    settings.BACKBURNER_APP; other options (`title`, `redact`, ...) go to the dashboard."""
    from backburner.starlette import dashboard_asgi

    the_app = app if app is not None else _settings_app()
    asgi = dashboard_asgi(the_app, role=_decided_role, **dashboard_options)
    return _patterns(asgi, role, login_redirect=True, name="backburner-dashboard")


def jobs_urls(app: Backburner | None = None, *, role: RoleOfRequest = staff_role,
              **router_options: Any) -> list[Any]:
    """URL patterns serving the JSON job router (`GET /jobs/{id}`, cancel, retry, ...), to
    `include()` at any prefix. Other options go to `backburner.fastapi.job_router`."""
    from backburner.starlette import jobs_asgi

    the_app = app if app is not None else _settings_app()
    asgi = jobs_asgi(the_app, role=_decided_role, **router_options)
    return _patterns(asgi, role, login_redirect=False, name="backburner-jobs")


def _settings_app() -> Backburner:
    from backburner.django.settings import get_app

    return get_app()


def _decided_role(connection: Any) -> Role | None:
    environ = connection.scope.get("wsgi_environ") or {}
    return cast(Role | None, environ.get(_ENVIRON_KEY))


def _patterns(asgi: Any, role: RoleOfRequest, *, login_redirect: bool, name: str) -> list[Any]:
    from django.urls import re_path
    from django.views.decorators.csrf import csrf_exempt

    view = csrf_exempt(AsgiView(_PerProcess(asgi), role, login_redirect=login_redirect))
    return [re_path(r"^(?P<rest>.*)$", view, name=name)]


class _PerProcess:
    """a2wsgi's middleware runs the ASGI app on an event loop thread it starts when made:
    made on first use in each process, since a thread does not survive a fork (gunicorn
    --preload imports the project, then forks its workers)."""

    def __init__(self, asgi: Any) -> None:
        self._asgi = asgi
        self._lock = threading.Lock()
        self._pid = -1
        self._wsgi: ASGIMiddleware | None = None

    def __call__(self) -> ASGIMiddleware:
        with self._lock:
            if self._wsgi is None or self._pid != os.getpid():
                self._wsgi, self._pid = ASGIMiddleware(self._asgi), os.getpid()
            return self._wsgi


class AsgiView:
    """A Django view answering with the mounted ASGI app for the path under its prefix."""

    def __init__(self, wsgi: Callable[[], ASGIMiddleware], role: RoleOfRequest, *,
                 login_redirect: bool) -> None:
        self._wsgi = wsgi
        self._role = role
        self._login_redirect = login_redirect

    def __call__(self, request: Any, rest: str = "") -> Any:
        from django.http import HttpResponse, JsonResponse

        if not hasattr(request, "user"):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("backburner.django's URLs need Django's "
                                       "AuthenticationMiddleware (request.user)")
        role = self._role(request)
        if role not in ("admin", "read"):
            if not request.user.is_authenticated:
                if self._login_redirect:
                    from django.contrib.auth.views import redirect_to_login

                    return redirect_to_login(request.get_full_path())
                return _problem(JsonResponse, 401, "Unauthorized", "log in first")
            return _problem(JsonResponse, 403, "Forbidden",
                            "this user may not use Backburner's pages")
        status, headers, body = self._forward(request, rest, role)
        kind = next((v for k, v in headers if k.lower() == "content-type"), "")
        if kind.startswith("text/event-stream"):
            from django.http import StreamingHttpResponse

            response: Any = StreamingHttpResponse(body, status=status, content_type=kind)
        else:
            try:
                content = b"".join(body)
            finally:
                _close(body)
            response = HttpResponse(content, status=status, content_type=kind or None)
        for key, value in headers:
            lower = key.lower()
            if lower in _HOP_BY_HOP or lower in ("content-type", "content-length"):
                continue
            if lower == "set-cookie":
                response.cookies.load(value)  # several are allowed: not a plain header
            else:
                response[key] = value
        return response

    def _forward(self, request: Any, rest: str, role: Role,
                 ) -> tuple[int, list[tuple[str, str]], Iterator[bytes]]:
        """Call the WSGI-wrapped app with this request under the matched prefix: its
        status, headers and the body still to read."""
        # request.path is Django's script prefix and the path; the URL pattern captured
        # `rest`, so what precedes it is where this view is mounted.
        mount = request.path[: len(request.path) - len(rest)].rstrip("/")
        body: bytes = request.body
        environ: dict[str, Any] = {
            k: v for k, v in request.META.items() if isinstance(v, str)
        }
        environ.update({
            # WSGI's paths are the UTF-8 bytes as latin-1 text (PEP 3333).
            "SCRIPT_NAME": _wsgi_text(mount),
            "PATH_INFO": _wsgi_text("/" + rest),
            "REQUEST_METHOD": request.method,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": request.META.get("wsgi.errors") or io.StringIO(),
            "wsgi.url_scheme": request.scheme,
            "CONTENT_LENGTH": str(len(body)),
            _ENVIRON_KEY: role,
        })
        environ.setdefault("SERVER_NAME", "localhost")
        environ.setdefault("SERVER_PORT", "80")
        environ.pop("HTTP_" + _ENVIRON_KEY.upper().replace(".", "_"), None)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], Any]:
            started[:] = [status, headers]
            return lambda data: None  # a2wsgi never uses write()

        result: Iterable[bytes] = self._wsgi()(environ, start_response)  # type: ignore[arg-type]
        chunks = iter(result)
        first: list[bytes] = []
        for chunk in chunks:
            # The status comes with (before) the first chunk of the body.
            first.append(chunk)
            if started:
                break
        if not started:
            _close(chunks)
            raise RuntimeError("the mounted application gave no response")
        status_line, headers = started
        return int(status_line.split(" ", 1)[0]), headers, _chain(first, chunks)


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from first
        yield from rest
    finally:
        _close(rest)


def _close(body: Any) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _wsgi_text(path: str) -> str:
    return path.encode("utf-8").decode("latin-1")


def _problem(json_response: Any, status: int, title: str, detail: str) -> Any:
    return json_response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status, content_type="application/problem+json",
    )
