"""Backburner in a Flask app: the extension, a `flask backburner worker` command that runs
jobs inside the Flask app's context, and the job router and the dashboard mounted behind the
app's own login.

    from flask import Flask, session
    from backburner import flask as bb

    backburner = bb.BackburnerFlask(jobs)            # jobs = Backburner(...)

    def role_of() -> bb.Role | None:                  # runs in the request's Flask context
        return "admin" if session.get("user") == "admin" else None

    def create_app() -> Flask:
        app = Flask(__name__)
        backburner.init_app(app)
        app.register_blueprint(bb.jobs_blueprint(jobs, role=role_of), url_prefix="/bb")
        app.register_blueprint(bb.dashboard_blueprint(jobs, role=role_of),
                               url_prefix="/dashboard")
        return app

    @app.post("/reports")
    def report():
        return bb.accepted(build_report.enqueue_sync(42))   # 202, Location: .../bb/jobs/<id>

    $ flask --app site backburner worker --concurrency 8 --queues default,mail

Views enqueue with the sync API (`enqueue_sync`, `result_sync`...), which runs on the app's
portal loop: no event loop in the view, and one set of connections per process, made again in
each process a pre-forking server (gunicorn `--preload`) forks.

The mounted applications are the FastAPI ones (`backburner.starlette.jobs_asgi` and
`dashboard_asgi`) served through a2wsgi, each on a portal loop of its own mount: one copy of
the routes, answers and safety checks (the dashboard's CSRF, the router's same-origin rule).
Authentication is Flask's: `role()` is called with no arguments inside a Flask request
context for that very request (`session`, `request`, flask-login's `current_user`, anything a
`before_request` hook set up), and answers `"admin"`, `"read"` or None (a 401); it must
not read the request's body (`request.form`, `get_json`), which the mounted app reads. Over WSGI
there is no WebSocket; the SSE streams work, but each holds a server thread while open (use
gunicorn's gthread or gevent workers for them). Links, redirects and `Location` headers carry
the WSGI `SCRIPT_NAME` and the blueprint's prefix.

Flask and a2wsgi (the `flask` extra) are imported only by this module.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook first: see _at_exit)
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, cast

import click
from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from flask.cli import AppGroup

from backburner.app import Backburner
from backburner.errors import BackburnerError
from backburner.handle import Job
from backburner.portal import Portal

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.types import ASGIApp

__all__ = ["BackburnerFlask", "Role", "RoleOf", "accepted", "dashboard_blueprint",
           "jobs_blueprint", "run_worker"]

Role = Literal["admin", "read"]
RoleOf = Callable[[], Role | None]
"""The caller's role for the current Flask request (read `session`, `request`,
`current_user`); None when there are no (valid) credentials."""

EXTENSION = "backburner"
"""The key of `flask_app.extensions` the extension is stored under."""
_ROLE_KEY = "backburner.flask.role"
"""Where the view leaves `role()`'s answer in the WSGI environ for the mounted app: an
environ key, which no request header can set (headers arrive as HTTP_*)."""
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class BackburnerFlask:
    """The Flask extension: `BackburnerFlask(jobs, app)`, or `BackburnerFlask(jobs)` then
    `init_app(app)` in an app factory. It adds the `flask backburner` commands and is
    found again as `app.extensions["backburner"]` (`BackburnerFlask.of()`).

    `close_at_exit`: close the sync API's connections and stop its portal thread when the
    process exits (see `_at_exit`). Flask has no hook for the end of a process (teardown
    hooks run after every request or app context, far too often to drop the connections),
    and the portal thread is a daemon that would otherwise be killed mid-conversation: with
    this the store sees an orderly goodbye from each web process (gunicorn's workers exit
    through `sys.exit`, so exit hooks run in each of them)."""

    def __init__(self, jobs: Backburner, flask_app: Flask | None = None, *,
                 close_at_exit: bool = True) -> None:
        self.jobs = jobs
        self._close_at_exit = close_at_exit
        self._closes_at_exit = False
        if flask_app is not None:
            self.init_app(flask_app)

    def init_app(self, flask_app: Flask) -> None:
        flask_app.extensions[EXTENSION] = self
        flask_app.cli.add_command(_commands())
        if self._close_at_exit and not self._closes_at_exit:
            self._closes_at_exit = True
            _at_exit(self.jobs.close_sync)

    @staticmethod
    def of(flask_app: Flask | None = None) -> BackburnerFlask:
        """The extension of `flask_app` (default: the current app)."""
        the_app = flask_app if flask_app is not None else current_app
        found = the_app.extensions.get(EXTENSION)
        if not isinstance(found, BackburnerFlask):
            raise RuntimeError(f"no BackburnerFlask on the Flask app {the_app.name!r}: "
                               "call BackburnerFlask(jobs).init_app(app)")
        return found


def _at_exit(close: Callable[[], None]) -> None:
    """Run `close` when the process exits, while thread pools still take work. `atexit`
    hooks run too late: by then the standard library has stopped every ThreadPoolExecutor,
    so a store whose close goes through one (SQLite's) fails to close. The hooks of
    `threading._register_atexit` run before (the last registered first), which is why
    `concurrent.futures.thread`, whose exit hook stops the pools, is imported before any
    of ours is registered. Plain `atexit` where that private hook is missing."""
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        atexit.register(close)
    else:
        register(close)


# -- the worker --------------------------------------------------------------------------------
def _commands() -> AppGroup:
    """A new group per app: click commands are plain objects, and an app factory may make
    several apps in one process."""
    group = AppGroup("backburner", help="Backburner's worker, inside this Flask app.")
    # Through a typed name: Flask 3.0 (the lowest supported) leaves AppGroup.command
    # untyped, later releases type it.
    command: Callable[..., Callable[[Callable[..., Any]], click.Command]] = group.command

    @command("worker")
    @click.option("--concurrency", "-c", type=click.IntRange(min=1), default=10,
                  show_default=True, help="Jobs run at once.")
    @click.option("--queues", "-q", default=None, metavar="A,B",
                  help="Queues to serve, comma-separated, in priority order "
                  "(default: the queues of the app's tasks).")
    @click.option("--burst", is_flag=True, help="Exit once no job is ready.")
    @click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
                  help="On shutdown, seconds running jobs get to finish before they are "
                  "released.")
    @click.option("--log-level", default="INFO", show_default=True,
                  help="Level of Backburner's log lines, when the app configured no logging.")
    def worker(concurrency: int, queues: str | None, burst: bool, grace: float,
               log_level: str) -> None:
        """Run a worker for the app's tasks; each job runs in an app context of its own
        (`current_app`, extensions' sessions). SIGTERM/SIGINT stop it gracefully."""
        level = logging.getLevelName(log_level.upper())
        if not isinstance(level, int):
            raise click.BadParameter(f"unknown log level {log_level!r}",
                                     param_hint="--log-level")
        # Lines the app's own logging would not show otherwise (hasHandlers: its handlers
        # on the root logger or on "backburner" keep doing the job).
        if not logging.getLogger("backburner").hasHandlers():
            from backburner import logs

            logs.configure(level, "text")
        options: dict[str, Any] = {"concurrency": concurrency, "burst": burst, "grace": grace}
        if queues:
            options["queues"] = [q.strip() for q in queues.split(",") if q.strip()]
        # The app itself, not the proxy: jobs push its context on threads of their own.
        flask_app: Flask = cast(Any, current_app)._get_current_object()
        try:
            run_worker(BackburnerFlask.of(flask_app).jobs, flask_app, **options)
        except BackburnerError as exc:
            raise click.ClickException(str(exc)) from None

    return group


def run_worker(jobs: Backburner, flask_app: Flask, **options: Any) -> None:
    """Run a worker (options as for `Worker`) until SIGTERM/SIGINT, or with `burst=True`
    until no job is ready, each job in a fresh app context of `flask_app`: what
    `flask backburner worker` does, for a script of your own."""
    options.setdefault("handle_signals", True)
    with _each_job_in_context(jobs, flask_app):
        asyncio.run(jobs.run_worker(**options))


@contextmanager
def _each_job_in_context(jobs: Backburner, flask_app: Flask) -> Iterator[None]:
    """Inside the block, every task of `jobs` runs in an app context of its own, pushed for
    the call and popped after it, as Flask does for a request: `current_app` works, and an
    extension's per-context state (Flask-SQLAlchemy's session, removed at teardown) is never
    shared by two jobs running at once. Not one context for the whole worker: sync tasks run
    on threads of their own, which would not see it, and concurrent jobs would share it.

    The core has no per-job hook, so the tasks' functions are wrapped for the block and
    restored after it; only the worker process (the command's) sees the wrapping."""
    saved = {name: task.func for name, task in jobs.tasks.items()}
    for task in jobs.tasks.values():
        task.func = _in_app_context(flask_app, task.func, task.is_async)
    try:
        yield
    finally:
        for name, func in saved.items():
            jobs.tasks[name].func = func


def _in_app_context(flask_app: Flask, func: Callable[..., Any], is_async: bool,
                    ) -> Callable[..., Any]:
    if is_async:
        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            # Each job's coroutine runs in an asyncio task, with a copy of the context:
            # this push is seen by that job only.
            with flask_app.app_context():
                return await func(*args, **kwargs)

        return run_async

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with flask_app.app_context():
            return func(*args, **kwargs)

    return run


# -- the mounted router and dashboard ----------------------------------------------------------
def jobs_blueprint(jobs: Backburner, *, role: RoleOf, name: str = "backburner_jobs",
                   **router_options: Any) -> Blueprint:
    """The job router (`backburner.fastapi.job_router`: `/jobs/{id}`, control, SSE at
    `/jobs/{id}/events`, `POST /tasks/{name}` for `expose=[...]`, schedules, queues) as a
    blueprint to register under a prefix: `app.register_blueprint(bp, url_prefix="/bb")`.
    `role`: see the module; a read role gets 403 on every change. Other options go to
    `job_router`. Its view is the endpoint `f"{name}.mounted"` (see `accepted`)."""
    from backburner.starlette import jobs_asgi

    _check_role(role, "jobs_blueprint")
    return _Mount(jobs_asgi(jobs, role=_role_of_request, **router_options), role,
                  name).blueprint


def dashboard_blueprint(jobs: Backburner, *, role: RoleOf,
                        name: str = "backburner_dashboard", **dashboard_options: Any,
                        ) -> Blueprint:
    """The dashboard (`backburner.dashboard.dashboard_router`) as a blueprint to register
    under a prefix. `role`: see the module (a read role sees every page, every action is a
    403); other options (`redact`, `tasks`, `title`...) go to `dashboard_router`."""
    from backburner.starlette import dashboard_asgi

    _check_role(role, "dashboard_blueprint")
    return _Mount(dashboard_asgi(jobs, role=_role_of_request, **dashboard_options), role,
                  name).blueprint


def accepted(job: Job[Any], *, endpoint: str = "backburner_jobs.mounted") -> Response:
    """A 202 Accepted for a job a view enqueued, as the FastAPI `accepted` answers: the
    `Location` of its status in the mounted job router (`endpoint`: that blueprint's
    `<name>.mounted`), `Retry-After`, and the job's URLs in the body."""
    status_url = url_for(endpoint, rest=f"jobs/{job.id}", _external=True)
    response = jsonify(id=job.id, task=job.task_name or "", state=job.initial_state.value,
                       status_url=status_url, events_url=f"{status_url}/events")
    response.status_code = 202
    response.headers["Location"] = status_url
    response.headers["Retry-After"] = "1"
    return response


def _check_role(role: Any, where: str) -> None:
    # Required, not defaulting to "everyone is admin": a blueprint is reachable wherever
    # the Flask app is, and the app's login is the point of mounting it here.
    if not callable(role):
        raise TypeError(f"{where}: role= must be a callable answering 'admin', 'read' or None "
                        "for the current request (pass role=lambda: 'admin' to open it to all)")


def _role_of_request(connection: HTTPConnection) -> Role | None:
    """The mounted app's `role`: what the Flask view worked out for this request."""
    environ = connection.scope.get("wsgi_environ")
    return cast("Role | None", environ.get(_ROLE_KEY) if isinstance(environ, dict) else None)


class _Mount:
    """One ASGI app behind a catch-all Flask view."""

    def __init__(self, asgi: ASGIApp, role: RoleOf, name: str) -> None:
        self.asgi = asgi
        self.role = role
        # A loop of this mount's own, so a long SSE stream or a slow dashboard query never
        # delays the views' sync calls. A Portal: started on first use in each process
        # (never in a preloading parent's copy), made again after a fork, and it closes
        # the connections opened on it when stopped.
        self.portal = Portal(f"backburner-flask-{name}")
        _at_exit(self.portal.stop)
        self.blueprint = Blueprint(name, __name__)
        self.blueprint.add_url_rule("/", "mounted", self.view, defaults={"rest": ""},
                                    methods=_METHODS, provide_automatic_options=False)
        self.blueprint.add_url_rule("/<path:rest>", "mounted", self.view, methods=_METHODS,
                                    provide_automatic_options=False)

    def view(self, rest: str) -> Response:
        from a2wsgi import ASGIMiddleware

        environ = request.environ
        path = environ.get("PATH_INFO", "")
        # WSGI paths are the request's bytes decoded as latin-1; `rest` was decoded as UTF-8.
        tail = rest.encode("utf-8", "surrogateescape").decode("latin-1")
        if not path.endswith(tail):
            return Response("not found", 404)
        mount = path[: len(path) - len(tail)].rstrip("/")
        inner = dict(environ)
        inner["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + mount
        inner["PATH_INFO"] = "/" + tail
        inner[_ROLE_KEY] = self.role()
        # Cheap to make (it only binds the loop); the loop is this process's.
        app = ASGIMiddleware(self.asgi, loop=self.portal.loop())  # type: ignore[arg-type]
        # `from_app` makes an instance of the class it is called on: Flask's Response.
        return cast(Response, Response.from_app(cast(Any, app), inner))
