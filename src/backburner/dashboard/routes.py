"""The dashboard's routes: server-rendered pages over one Backburner app, and the actions
that change jobs, queues and schedules. Everything hangs off the `Dashboard` object the
factory builds (templates, history samples): two dashboards in one process share nothing."""

from __future__ import annotations

import csv
import inspect
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qs, urlencode

import jinja2
import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from backburner import bulk
from backburner.app import Backburner
from backburner.backends.protocol import JobFilter
from backburner.dashboard import security
from backburner.dashboard.forms import Field, defaults_of, fields_of, parse
from backburner.dashboard.leases import Stall, describe, stalled
from backburner.dashboard.samples import Sampler
from backburner.dashboard.security import Role
from backburner.errors import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidArgumentsError,
    JobNotFoundError,
)
from backburner.failures import failure_groups, retry_failure_group
from backburner.fastapi.origins import origin_allowed
from backburner.fastapi.streams import job_updates
from backburner.job import WAITING_RUN_AT, JobRecord, JobState
from backburner.task import Task

Auth = Callable[..., Role | Awaitable[Role]]
Redact = Callable[[JobRecord], JobRecord]

STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8",
                "dashboard.js": "text/javascript; charset=utf-8",
                "favicon.svg": "image/svg+xml"}
ACTIONS = ("retry", "cancel", "delete")
MAX_FORM_BYTES = 256 * 1024
CSV_LIMIT = 10_000
MAX_LINKS = 50
"""Linked jobs shown per relation on a job's page (a group callback may wait for many)."""
NOTICES = {
    "retry": "retried", "cancel": "cancelled", "delete": "deleted", "pause": "paused",
    "resume": "resumed", "trigger": "triggered", "enqueue": "enqueued",
}


@dataclass(frozen=True, slots=True)
class Timeline:
    at: datetime
    what: str
    detail: str = ""


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
    return board.router(prefix)


def mount_dashboard(api: FastAPI, app: Backburner, prefix: str = "/dashboard",
                    **options: Any) -> APIRouter:
    """Add the dashboard to a FastAPI app at `prefix`; options as for `dashboard_router`."""
    router = dashboard_router(app, prefix=prefix.rstrip("/"), **options)
    api.include_router(router)
    return router


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
        self.env.filters["when"] = _when
        self.env.filters["ago"] = _ago
        self.env.filters["pretty"] = _pretty
        self.env.filters["stall"] = lambda stall: describe(stall, _when, _ago)

    # -- helpers ---------------------------------------------------------------------------
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
        notice = _notice(request)

        def url(route: str, query: dict[str, Any] | None = None, **params: Any) -> str:
            return self.url(request, route, query, **params)

        html = self.env.get_template(template).render(
            url=url, csrf=token, csrf_field=security.CSRF_FIELD, role=role,
            admin=role == "admin", title=self.title, refresh=self.refresh, notice=notice,
            here=_here(request),
            states=[s.value for s in JobState], actions=ACTIONS, **context)
        response = HTMLResponse(html, status_code=status, headers=dict(security.SECURITY_HEADERS))
        if request.cookies.get(self.cookie) != token:
            response.set_cookie(self.cookie, token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path=self.root(request))
        return response

    def back(self, request: Request, form: dict[str, list[str]], fallback: str,
             notice: str | None = None, done: int = 0, skipped: int = 0) -> RedirectResponse:
        """303 to the form's `next` (only a path inside the dashboard), with a notice."""
        target = security.safe_next(_one(form, "next"), self.root(request)) or fallback
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
        body = await _body(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) \
            if kind == "application/x-www-form-urlencoded" else {}
        sent = _one(form, security.CSRF_FIELD) or request.headers.get(security.CSRF_HEADER)
        if not security.csrf_matches(request.cookies.get(self.cookie), sent):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return form

    # -- routes ----------------------------------------------------------------------------
    def router(self, prefix: str) -> APIRouter:
        auth = self.auth

        async def everyone_admin() -> Role:
            return "admin"

        async def checked_role(role: Any = Depends(auth or everyone_admin)) -> Role:  # noqa: B008
            if inspect.isawaitable(role):
                role = await role
            if role not in security.ROLES:
                raise HTTPException(403, "this user may not see the dashboard")
            return role  # type: ignore[no-any-return]

        # Not a conditional expression: mypy 1.11 joins its two functions to `function`,
        # which Depends refuses.
        current_role: Callable[..., Awaitable[Role]] = checked_role
        if auth is None:
            current_role = everyone_admin

        router = APIRouter(prefix=prefix, include_in_schema=False)
        as_role = Depends(current_role)
        r = self.route

        @router.get("/", name=r("overview"))
        async def overview(request: Request, role: Role = as_role) -> Response:
            async with _store():
                sample = await self.sampler.latest()
                failed = await self.app.backend.list_jobs(
                    JobFilter(states=(JobState.FAILED,)), 10)
                paused = {name for name, state in (await self.app.backend.queue_states()).items()
                          if state.paused}
            alive = [w for w in sample.workers
                     if sample.at - w.heartbeat_at <= self.stale_after]
            queues = []
            for queue, q in sample.queues.items():
                serving = [w for w in alive if queue in w.queues]
                queues.append({
                    "name": queue, "sample": q, "charts": self.sampler.charts(queue),
                    "workers": len(serving), "paused": queue in paused,
                    "stalled": q.pending > 0 and not serving and queue not in paused,
                    "growing": self.sampler.backlog_growing(queue),
                })
            return self.page(request, "overview.html", role, queues=queues, workers=alive,
                             all_workers=sample.workers, samples=len(self.sampler.samples),
                             sample_every=self.sampler.interval,
                             history_minutes=self.sampler.window / 60,
                             failures=[self.shown(j) for j in failed.jobs])

        if prefix:
            @router.get("", name=r("overview_bare"))
            async def overview_bare(request: Request, role: Role = as_role) -> Response:
                return RedirectResponse(self.root(request), 307)

        @router.get("/static/{file}", name=r("static"))
        async def static(file: str, role: Role = as_role) -> Response:
            # Behind the auth too (R21: every route): the browser sends the page's
            # credentials (cookie, Basic) with its same-origin script and stylesheet.
            if file not in STATIC_FILES:
                raise HTTPException(404, "no such file")
            from importlib.resources import files

            body = (files("backburner.dashboard") / "static" / file).read_bytes()
            return Response(body, media_type=STATIC_FILES[file],
                            headers={"Cache-Control": "private, max-age=300",
                                     "X-Content-Type-Options": "nosniff"})

        @router.get("/favicon.ico", name=r("favicon"))
        async def favicon(request: Request, role: Role = as_role) -> Response:
            # The layout links the SVG; a browser that asks for the ICO under the dashboard
            # anyway (a bookmark, an old client) is sent there instead of a 404.
            return RedirectResponse(self.url(request, "static", file="favicon.svg"), 308)

        @router.get("/jobs", name=r("jobs"))
        async def jobs(request: Request, role: Role = as_role) -> Response:
            query = _filters(request.query_params)
            try:
                flt = _job_filter(self.app, query)
            except ConfigurationError as exc:
                return self.page(request, "error.html", role, 400, message=str(exc))
            limit = _limit(request.query_params.get("limit"))
            cursor = request.query_params.get("cursor") or None
            async with _store():
                try:
                    found = await self.app.backend.list_jobs(flt, limit, cursor)
                except ConfigurationError as exc:
                    return self.page(request, "error.html", role, 400, message=str(exc))
                known = await self._queue_names(found.jobs, query["queue"])
                listed = [self.shown(j) for j in found.jobs]
                stalls = await self._stalls(listed)
            next_url = None if found.next_cursor is None else self.url(
                request, "jobs", {**query, "cursor": found.next_cursor, "limit": limit})
            return self.page(
                request, "jobs.html", role, jobs=listed, stalls=stalls, query=query,
                next_url=next_url, first_url=(
                    self.url(request, "jobs", query) if cursor else None),
                csv_url=self.url(request, "jobs_csv", query), queues=known,
                bulk_urls={a: self.url(request, "bulk_confirm", {**query, "action": a})
                           for a in ACTIONS},
                task_names=sorted(self.app.tasks))

        @router.get("/jobs.csv", name=r("jobs_csv"))
        async def jobs_csv(request: Request, role: Role = as_role) -> Response:
            query = _filters(request.query_params)
            try:
                flt = _job_filter(self.app, query)
            except ConfigurationError as exc:
                raise HTTPException(400, str(exc)) from None

            async def rows() -> AsyncIterator[str]:
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerow(["id", "task", "queue", "state", "attempt", "max_attempts",
                                 "created_at", "started_at", "finished_at", "args", "kwargs",
                                 "result", "last_error"])
                cursor, sent = None, 0
                while sent < CSV_LIMIT:
                    page = await self.app.backend.list_jobs(flt, 500, cursor)
                    for raw in page.jobs:
                        j = self.shown(raw)
                        writer.writerow([security.csv_cell(str(v)) for v in (
                            j.id, j.task, j.queue, j.state.value, j.attempt, j.max_attempts,
                            _iso(j.created_at), _iso(j.started_at), _iso(j.finished_at),
                            _json(j.args), _json(j.kwargs), _json(j.result),
                            j.last_error.message if j.last_error else "")])
                    sent += len(page.jobs)
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
                    cursor = page.next_cursor
                    if cursor is None:
                        break

            return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
                **security.SECURITY_HEADERS,
                "Content-Disposition": 'attachment; filename="jobs.csv"'})

        @router.get("/jobs/{job_id}", name=r("job"))
        async def job(request: Request, job_id: str, role: Role = as_role) -> Response:
            async with _store():
                record = await self.app.get_job(job_id)
            if record is None:
                return self.page(request, "error.html", role, 404,
                                 message=f"no job with id {job_id!r}")
            shown = self.shown(record)
            async with _store():
                links = await self._links(record)
                stall = (await self._stalls([shown])).get(record.id)
            return self.page(request, "job.html", role, job=shown, links=links, stall=stall,
                             timeline=_timeline(shown), result=_pretty(shown.result),
                             events_url=self.url(request, "job_events", job_id=job_id))

        @router.get("/jobs/{job_id}/events", name=r("job_events"))
        async def job_events(request: Request, job_id: str, role: Role = as_role) -> Response:
            """State and progress only (what the page updates in place), each from the
            redacted record (a progress message may carry what the hook hides); the page
            reloads for the result, so the redaction of a full render applies there too."""
            updates = job_updates(self.app, job_id, keepalive=15.0, redact=self.redact)

            async def stream() -> AsyncIterator[bytes]:
                yield b"retry: 2000\n\n"
                try:
                    async for item in updates:
                        if item is None:
                            yield b": keep-alive\n\n"
                            continue
                        data = {k: item[1][k] for k in ("state", "attempt", "progress")}
                        yield b"event: job\ndata: " + orjson.dumps(data) + b"\n\n"
                except JobNotFoundError:
                    yield b"event: gone\ndata: {}\n\n"
                except BackendUnavailableError:
                    yield b"event: unavailable\ndata: {}\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream", headers={
                **security.SECURITY_HEADERS, "X-Accel-Buffering": "no"})

        @router.post("/jobs/{job_id}/{action}", name=r("job_action"))
        async def job_action(request: Request, job_id: str, action: str,
                             role: Role = as_role) -> Response:
            form = await self.form(request, role)
            if action not in ACTIONS:
                raise HTTPException(404, f"no action {action!r}")
            async with _store():
                done = await self._apply(action, [job_id])
            fallback = self.url(request, "jobs") if action == "delete" else \
                self.url(request, "job", job_id=job_id)
            return self.back(request, form, fallback, action, done, 1 - done)

        @router.post("/selection", name=r("selection"))
        async def selection(request: Request, role: Role = as_role) -> Response:
            form = await self.form(request, role)
            action = _one(form, "action") or ""
            if action not in ACTIONS:
                raise HTTPException(400, "action must be retry, cancel or delete")
            ids = form.get("ids", [])[:1000]
            async with _store():
                done = await self._apply(action, ids)
            return self.back(request, form, self.url(request, "jobs"), action, done,
                             len(ids) - done)

        @router.get("/jobs-bulk", name=r("bulk_confirm"))
        async def bulk_confirm(request: Request, role: Role = as_role) -> Response:
            """What an action on every job matching the filter would touch: the count, and
            a button to confirm (nothing changes on a GET)."""
            query = _filters(request.query_params)
            action = request.query_params.get("action", "")
            try:
                target = bulk.narrowed(_job_filter(self.app, query), action)
            except ConfigurationError as exc:
                return self.page(request, "error.html", role, 400, message=str(exc))
            async with _store():
                count = 0 if target is None else await self.app.count_jobs(target)
            return self.page(request, "bulk_confirm.html", role, action=action, query=query,
                             count=count, applies=[s.value for s in bulk.ACTION_STATES[action]],
                             back_url=self.url(request, "jobs", query))

        @router.post("/jobs-bulk", name=r("bulk"))
        async def bulk_apply(request: Request, role: Role = as_role) -> Response:
            form = await self.form(request, role)
            query = _filters(form)
            action = _one(form, "action") or ""
            try:
                flt = _job_filter(self.app, query)
                bulk.narrowed(flt, action)
            except ConfigurationError as exc:
                raise HTTPException(400, str(exc)) from None
            # At most the count the user confirmed: jobs that matched only later are not
            # touched by a confirmation that never counted them.
            confirmed = _int(_one(form, "count")) or 0
            result = bulk.BulkResult(0, 0, 0)
            if confirmed > 0:
                async with _store():
                    result = await self.app.bulk(flt, cast(bulk.Action, action),
                                                 limit=confirmed)
            return self.back(request, form, self.url(request, "jobs", query), action,
                             result.changed, result.skipped)

        @router.get("/failures", name=r("failures"))
        async def failures(request: Request, role: Role = as_role) -> Response:
            async with _store():
                groups = await failure_groups(self.app, scan=self.failure_scan)
            return self.page(request, "failures.html", role, groups=groups,
                             scan=self.failure_scan)

        @router.post("/failures/{group}/retry", name=r("failure_retry"))
        async def failure_retry(request: Request, group: str, role: Role = as_role) -> Response:
            form = await self.form(request, role)
            async with _store():
                done = await retry_failure_group(self.app, group, scan=self.failure_scan)
            return self.back(request, form, self.url(request, "failures"), "retry", done)

        @router.get("/queues", name=r("queues"))
        async def queues(request: Request, role: Role = as_role) -> Response:
            async with _store():
                infos = await self.app.queues()
            return self.page(request, "queues.html", role,
                             queues=[(q, {s.value: n for s, n in q.counts.items()})
                                     for q in infos])

        @router.post("/queues/{queue:path}/{action}", name=r("queue_action"))
        async def queue_action(request: Request, queue: str, action: str,
                               role: Role = as_role) -> Response:
            form = await self.form(request, role)
            if action not in ("pause", "resume"):
                raise HTTPException(404, f"no action {action!r}")
            async with _store():
                try:
                    if action == "pause":
                        await self.app.pause_queue(queue)
                    else:
                        await self.app.resume_queue(queue)
                except ConfigurationError as exc:
                    raise HTTPException(400, str(exc)) from None
            return self.back(request, form, self.url(request, "queues"), action, 1)

        @router.get("/workers", name=r("workers"))
        async def workers(request: Request, role: Role = as_role) -> Response:
            async with _store():
                found = await self.app.backend.list_workers()
                now = await self.app.backend.now()
                running = await self.app.backend.list_jobs(
                    JobFilter(states=(JobState.RUNNING,)), 500)
            by_worker: dict[str, list[JobRecord]] = {}
            for j in running.jobs:
                by_worker.setdefault(j.worker_id or "", []).append(self.shown(j))
            rows = [{"info": w, "age": now - w.heartbeat_at,
                     "alive": now - w.heartbeat_at <= self.stale_after,
                     "jobs": by_worker.get(w.id, [])}
                    for w in sorted(found, key=lambda w: w.started_at)]
            return self.page(request, "workers.html", role, workers=rows, now=now)

        @router.get("/schedules", name=r("schedules"))
        async def schedules(request: Request, role: Role = as_role) -> Response:
            from backburner.fastapi.schedules import _last_tick

            async with _store():
                infos = await self.app.schedules(runs=3)
                rows = [{"info": s, "last": await _last_tick(self.app, s)} for s in infos]
            return self.page(request, "schedules.html", role, schedules=rows)

        @router.post("/schedules/{schedule:path}/{action}", name=r("schedule_action"))
        async def schedule_action(request: Request, schedule: str, action: str,
                                  role: Role = as_role) -> Response:
            form = await self.form(request, role)
            if schedule not in self.app.periodic_schedules:
                raise HTTPException(404, f"no schedule named {schedule!r}")
            if action not in ("pause", "resume", "trigger"):
                raise HTTPException(404, f"no action {action!r}")
            async with _store():
                if action == "pause":
                    await self.app.pause_schedule(schedule)
                elif action == "resume":
                    await self.app.resume_schedule(schedule)
                else:
                    triggered = await self.app.trigger_schedule(schedule)
                    return self.back(request, {}, self.url(request, "job", job_id=triggered.id),
                                     "trigger", 1)
            return self.back(request, form, self.url(request, "schedules"), action, 1)

        @router.get("/enqueue", name=r("enqueue_index"))
        async def enqueue_index(request: Request, role: Role = as_role) -> Response:
            offered = sorted(self.offered().values(), key=lambda t: t.name)
            return self.page(request, "enqueue_index.html", role, tasks=offered)

        @router.get("/enqueue/{task:path}", name=r("enqueue"))
        async def enqueue_form(request: Request, task: str, role: Role = as_role) -> Response:
            found = self.offered().get(task)
            if found is None:
                return self.page(request, "error.html", role, 404,
                                 message=f"no task named {task!r}")
            return self.page(request, "enqueue.html", role, task=found,
                             fields=_fields(found), values={}, errors={}, error=None)

        @router.post("/enqueue/{task:path}", name=r("enqueue_post"))
        async def enqueue_post(request: Request, task: str, role: Role = as_role) -> Response:
            form = await self.form(request, role)
            found = self.offered().get(task)
            if found is None:
                raise HTTPException(404, f"no task named {task!r}")
            fields = _fields(found)
            values = {k: v[0] for k, v in form.items() if v}
            kwargs, errors = parse(fields, values)
            error = None
            if not errors:
                async with _store():
                    try:
                        job = await found.enqueue(**kwargs)
                    except InvalidArgumentsError as exc:
                        error = str(exc)
                    else:
                        return self.back(request, {}, self.url(request, "job", job_id=job.id),
                                         "enqueue", 1)
            return self.page(request, "enqueue.html", role, 422, task=found, fields=fields,
                             values=values, errors=errors, error=error)

        return router

    async def _stalls(self, shown: Sequence[JobRecord]) -> dict[str, Stall]:
        """The running jobs among `shown` whose worker stopped heartbeating, by id. Reads
        the workers and the store's clock only when one of them runs."""
        if not any(j.state is JobState.RUNNING for j in shown):
            return {}
        workers = await self.app.backend.list_workers()
        now = await self.app.backend.now()
        found = {j.id: stalled(j, workers, now, self.stale_after) for j in shown}
        return {job_id: stall for job_id, stall in found.items() if stall is not None}

    async def _queue_names(self, shown: Sequence[JobRecord], chosen: str) -> list[str]:
        """The queues the filter offers: those of the app's tasks, of live workers, ever
        paused, on this page, and the one chosen. Not `counts()`: it reads every row of the
        store (seconds at a million jobs on SQLite) for names that rarely change."""
        names = {t.defaults.queue for t in self.app.tasks.values()}
        names |= set(await self.app.backend.queue_states())
        for worker in await self.app.backend.list_workers():
            names.update(worker.queues)
        names.update(j.queue for j in shown)
        if chosen:
            names.add(chosen)
        return sorted(names)

    async def _links(self, record: JobRecord) -> list[tuple[str, str, JobRecord | None]]:
        """(relation, id, record or None when gone) of the jobs of its chain or group this
        one is linked to: the flow's first job, those it waits for, those waiting for it."""
        wanted: list[tuple[str, str]] = []
        if record.flow_id and record.flow_id != record.id:
            wanted.append(("first job of the flow", record.flow_id))
        wanted += [("waits for", i) for i in record.depends_on[:MAX_LINKS]]
        wanted += [("waited for by", i) for i in record.dependents[:MAX_LINKS]]
        found = []
        for relation, job_id in wanted:
            linked = await self.app.get_job(job_id)
            found.append((relation, job_id, None if linked is None else self.shown(linked)))
        return found

    async def _apply(self, action: str, ids: Sequence[str]) -> int:
        """Apply one action to each job; how many it changed (the others were not in a
        state that allows it, or are gone)."""
        done = 0
        for job_id in ids:
            # Read first: the store answers a retry of a pending job with "pending" too, and
            # the notice must tell what really changed.
            record = await self.app.get_job(job_id)
            if record is None:
                continue
            try:
                if action == "retry":
                    ok = record.state in (JobState.FAILED, JobState.CANCELLED) and \
                        await self.app.retry(job_id) is JobState.PENDING
                elif action == "cancel":
                    ok = not record.is_terminal and await self.app.cancel(job_id) in (
                        JobState.CANCELLED, JobState.RUNNING)
                else:
                    ok = await self.app.delete(job_id)
            except JobNotFoundError:
                ok = False
            done += ok
        return done


def _fields(task: Task[Any, Any]) -> list[Field]:
    return fields_of(task.signature.json_schema(), defaults_of(task.func))


# -- request helpers -------------------------------------------------------------------------
FILTER_KEYS = ("state", "task", "queue", "q", "after", "before")


def _filters(source: Any) -> dict[str, Any]:
    """The job filter of a query string or a posted form, as text (what the form shows and
    links carry): state (repeated), task, queue, q (search), after/before (UTC times)."""
    def get(key: str, size: int) -> str:
        if isinstance(source, dict):
            return (_one(source, key) or "").strip()[:size]
        return (source.get(key) or "").strip()[:size]

    states = source.get("state", []) if isinstance(source, dict) else source.getlist("state")
    return {"state": [s for s in states if s][:6], "task": get("task", 500),
            "queue": get("queue", 200), "q": get("q", 200), "after": get("after", 40),
            "before": get("before", 40)}


def _job_filter(app: Backburner, query: dict[str, Any]) -> JobFilter:
    """A checked filter (ConfigurationError naming a bad value)."""
    return app.job_filter(
        states=query["state"], task=query["task"] or None, queue=query["queue"] or None,
        search=query["q"] or None, created_after=_time(query["after"], "after"),
        created_before=_time(query["before"], "before"))


def _time(text: str, label: str) -> datetime | None:
    """A time from the form (`datetime-local`: no zone, taken as UTC) or an ISO string."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"{label}: not a date and time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _limit(raw: str | None) -> int:
    try:
        return max(1, min(200, int(raw or 50)))
    except ValueError:
        return 50


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _one(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _here(request: Request) -> str:
    """This page's path and query without a previous notice: where an action goes back to."""
    kept = [(k, v) for k, v in request.query_params.multi_items()
            if k not in ("notice", "done", "skipped")]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def _notice(request: Request) -> str | None:
    """The message of a redirect after an action: words from a fixed table and two
    numbers, so a link cannot make the dashboard say something of its own."""
    verb = NOTICES.get(request.query_params.get("notice", ""))
    if verb is None:
        return None
    try:
        done = int(request.query_params.get("done", "0"))
        skipped = int(request.query_params.get("skipped", "0"))
    except ValueError:
        return None
    text = f"{done} {verb}"
    if skipped:
        text += f", {skipped} skipped (not in a state that allows it)"
    return text


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    return bytes(body)


class _store:
    """An unreachable store is a 503 with Retry-After, never a 500."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if isinstance(exc, BackendUnavailableError):
            raise HTTPException(503, f"the job store is unavailable: {exc}",
                                headers={"Retry-After": "5"}) from None


# -- presentation ------------------------------------------------------------------------------
def _timeline(job: JobRecord) -> list[Timeline]:
    events = [Timeline(job.created_at, "created", f"queue {job.queue}")]
    if job.waiting_on > 0:
        events.append(Timeline(job.created_at, "waiting",
                               f"for {job.waiting_on} job(s) of its flow to complete"))
    elif job.run_at > job.created_at and (
            job.started_at is None or job.run_at < job.started_at) and \
            job.run_at.timestamp() < WAITING_RUN_AT:
        events.append(Timeline(job.run_at, "due", "scheduled to run"))
    for e in job.errors:
        events.append(Timeline(e.at, f"attempt {e.attempt} {e.reason.value}",
                               f"{e.type}: {e.message}"))
    if job.started_at is not None:
        events.append(Timeline(job.started_at, f"attempt {job.attempt} started",
                               job.worker_id or ""))
    if job.finished_at is not None:
        events.append(Timeline(job.finished_at, job.state.value,
                               job.reason.value if job.reason else ""))
    elif job.updated_at not in {e.at for e in events}:
        events.append(Timeline(job.updated_at, f"now {job.state.value}"))
    return sorted(events, key=lambda e: e.at)


def _when(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def _pretty(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return repr(value)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()
