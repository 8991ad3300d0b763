"""The HTTP API for jobs, bound to one Backburner app (no module globals): status, listing,
cancel, retry, delete, enqueue of exposed tasks (202 + Location), and live updates over
Server-Sent Events and WebSocket."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, WebSocket
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from backburner import bulk, codec, failures
from backburner.app import Backburner
from backburner.backends.protocol import JobFilter
from backburner.bulk import Action
from backburner.errors import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidArgumentsError,
    JobNotFoundError,
)
from backburner.fastapi.origins import normalise_origins, origin_allowed, origin_check
from backburner.fastapi.problems import (
    VALIDATION_PROBLEM,
    ProblemRoute,
    close_methods,
    problem,
)
from backburner.fastapi.schemas import (
    BulkIn,
    BulkOut,
    FailureGroupOut,
    FlowOut,
    JobAccepted,
    JobCountOut,
    JobOut,
    JobPageOut,
    RetriedOut,
)
from backburner.fastapi.streams import job_updates
from backburner.handle import Job
from backburner.job import JobRecord, JobState
from backburner.task import BoundTask, Task

RETRY_AFTER_SECONDS = 1
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_CURSOR = r"^\d{1,18}(:[!-~]{0,200})?$"
_Responses = dict[int | str, dict[str, Any]]
_NOT_FOUND: _Responses = {404: problem("no job with this id")}
_UNAVAILABLE: _Responses = {
    503: problem("the job store is unreachable")
}
_FORBIDDEN: _Responses = {
    403: problem("not allowed to change jobs, or a foreign origin")
}



@dataclasses.dataclass(frozen=True, slots=True)
class _FilterQuery:
    """The job filters of `GET /jobs` and `GET /jobs/count`, as sent."""

    states: tuple[JobState, ...]
    task: str | None
    queue: str | None
    search: str | None
    created_after: float | None
    created_before: float | None

    def of(self, app: Backburner) -> JobFilter | None:
        """The filter, or None when it names what no store can hold (an empty queue name, a
        NUL): it matches no job, which is the answer, not an error."""
        try:
            return app.job_filter(
                states=self.states, task=self.task, queue=self.queue, search=self.search,
                created_after=self.created_after, created_before=self.created_before,
            )
        except ConfigurationError:
            return None


def _filter_query(
    state: Annotated[list[JobState] | None, Query()] = None,
    task: Annotated[str | None, Query(max_length=500)] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    created_after: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    created_before: Annotated[float | None, Query(allow_inf_nan=False)] = None,
) -> _FilterQuery:
    """One declaration of the filter query parameters, for every route that takes them."""
    return _FilterQuery(tuple(state or ()), task, queue, search, created_after, created_before)

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
    router = APIRouter(dependencies=list(dependencies), tags=["jobs"],
                       route_class=ProblemRoute, responses={422: VALIDATION_PROBLEM})
    status_route = f"{name}_get_job"
    origins = normalise_origins(allowed_origins)
    writes: list[DependsParam] = [*write_dependencies, origin_check(allowed_origins)]

    # Before the /jobs/{job_id} routes, which would otherwise take "count" and "bulk" as ids.
    @router.get("/jobs/count", response_model=JobCountOut, name=f"{name}_count_jobs",
                operation_id=f"{name}_count_jobs", responses=_UNAVAILABLE)
    async def count_jobs(
        query: Annotated[_FilterQuery, Depends(_filter_query)],
        action: Annotated[Action | None, Query()] = None,
    ) -> JobCountOut:
        """How many jobs match the filters of `GET /jobs` (exact). With `action`, only
        those the bulk action would touch (narrowed to its states)."""
        filter = query.of(app)
        counted = filter if action is None or filter is None else bulk.narrowed(filter, action)
        async with _store():
            return JobCountOut(count=0 if counted is None else await app.count_jobs(counted))

    @router.post("/jobs/bulk/{action}", response_model=BulkOut, name=f"{name}_bulk_jobs",
                 operation_id=f"{name}_bulk_jobs", dependencies=writes,
                 responses={**_UNAVAILABLE, **_FORBIDDEN,
                            400: problem("the body is not JSON"),
                            409: problem("the count is not expected_count any more")})
    async def bulk_jobs(action: Action, body: BulkIn) -> BulkOut:
        """Retry, cancel or delete every job matching the filter, in the states where the
        action applies (retry: failed, cancelled; cancel: pending, scheduled, running;
        delete: completed, failed, cancelled). Needs `confirm: true`; with
        `expected_count`, refused (409) when the count changed since the user saw it."""
        filter = _FilterQuery(tuple(body.states), body.task, body.queue, body.search,
                              body.created_after, body.created_before).of(app)
        async with _store():
            if body.expected_count is not None:
                target = None if filter is None else bulk.narrowed(filter, action)
                count = 0 if target is None else await app.count_jobs(target)
                if count != body.expected_count:
                    raise HTTPException(
                        409, f"{count} jobs match now, not {body.expected_count}: count again"
                    )
            if filter is None:
                return BulkOut(action=action, matched=0, changed=0, skipped=0)
            result = await bulk.apply(app, filter, action, limit=body.limit)
        return BulkOut(action=action, matched=result.matched, changed=result.changed,
                       skipped=result.skipped)

    @router.get("/failures", response_model=list[FailureGroupOut], name=f"{name}_failures",
                operation_id=f"{name}_failures", responses=_UNAVAILABLE)
    async def list_failures(
        scan: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> list[FailureGroupOut]:
        """Failed jobs grouped by fingerprint (task, exception type, message template),
        over the most recent `scan` failed jobs, the largest group first."""
        async with _store():
            groups = await failures.failure_groups(app, scan=scan)
        return [FailureGroupOut(**{**dataclasses.asdict(g), "job_ids": list(g.job_ids),
                                   "queues": list(g.queues)}) for g in groups]

    @router.post("/failures/{fingerprint}/retry", response_model=RetriedOut,
                 name=f"{name}_retry_failures", operation_id=f"{name}_retry_failures",
                 dependencies=writes, responses={**_UNAVAILABLE, **_FORBIDDEN})
    async def retry_failures(
        fingerprint: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
        scan: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> RetriedOut:
        """Retry every job of the group among the most recent `scan` failed jobs."""
        async with _store():
            retried = await failures.retry_failure_group(app, fingerprint, scan=scan)
        return RetriedOut(retried=retried)

    @router.get("/jobs/{job_id}", response_model=JobOut, name=status_route,
                operation_id=status_route, responses={**_NOT_FOUND, **_UNAVAILABLE})
    async def get_job(job_id: str) -> JobOut:
        """The job's state, progress, result and every attempt's error."""
        async with _store():
            record = await app.get_job(job_id)
        if record is None:
            raise HTTPException(404, f"no job with id {job_id!r}")
        return JobOut.of(record)

    @router.get("/flows/{flow_id}", response_model=FlowOut, name=f"{name}_get_flow",
                operation_id=f"{name}_get_flow",
                responses={404: problem("no chain or group starts "
                                 "with this job id"), **_UNAVAILABLE})
    async def get_flow(flow_id: str) -> FlowOut:
        """A chain or group (with a callback) by its id, the id of its first job: its state
        and every job's record, with the links between them (see `app.get_flow`)."""
        async with _store():
            try:
                flow = await app.get_flow(flow_id)
                status = await flow.status()
            except (JobNotFoundError, ConfigurationError):
                raise HTTPException(
                    404, f"no chain or group starts with job {flow_id!r}"
                ) from None
        kind: Literal["chain", "group"] = "group" if flow.kind == "group" else "chain"
        return FlowOut(
            id=flow.id, kind=kind, state=status.state,
            failed=status.failed.id if status.failed else None,
            jobs=[JobOut.of(r) for r in status.records],
        )

    @router.get("/jobs", response_model=JobPageOut, name=f"{name}_list_jobs",
                operation_id=f"{name}_list_jobs",
                responses={**_UNAVAILABLE, 400: problem("a cursor of another store")})
    async def list_jobs(
        query: Annotated[_FilterQuery, Depends(_filter_query)],
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        # At most 18 digits: every cursor fits a signed 64-bit integer in every store (a
        # Redis cursor adds ":<job id>"; see _store_cursor).
        cursor: Annotated[str | None, Query(max_length=219, pattern=_CURSOR,
                                            description="a `next_cursor`")] = None,
    ) -> JobPageOut:
        """Jobs, newest first; pass `next_cursor` back as `cursor` for the next page (a
        page may be short, even empty, with a next cursor: `search` and the creation times
        are checked on a bounded number of jobs per page). `search`: case-insensitive, in
        arguments, results and errors; `created_after`/`created_before`: epoch seconds."""
        filter = query.of(app)
        if filter is None:
            return JobPageOut(jobs=[], next_cursor=None)
        async with _store():
            try:
                page = await app.list_jobs(filter=filter, limit=limit,
                                           cursor=_store_cursor(app, cursor))
            except ConfigurationError as exc:
                raise HTTPException(400, str(exc)) from None
        return JobPageOut(jobs=[JobOut.of(r) for r in page.jobs], next_cursor=page.next_cursor)

    @router.post("/jobs/{job_id}/cancel", response_model=JobOut, name=f"{name}_cancel_job",
                 operation_id=f"{name}_cancel_job", dependencies=writes,
                 responses={**_NOT_FOUND, **_UNAVAILABLE, **_FORBIDDEN,
                            409: problem("already finished")})
    async def cancel_job(job_id: str) -> JobOut:
        """Cancel a waiting job now, or ask the worker of a running one to stop it."""
        async with _store():
            try:
                state = await app.cancel(job_id)
            except JobNotFoundError:
                raise HTTPException(404, f"no job with id {job_id!r}") from None
            record = await app.get_job(job_id)
        if state in (JobState.COMPLETED, JobState.FAILED) or record is None:
            raise HTTPException(409, f"job {job_id} already ended {state.value}")
        return JobOut.of(record)

    @router.post("/jobs/{job_id}/retry", response_model=JobOut, name=f"{name}_retry_job",
                 operation_id=f"{name}_retry_job", dependencies=writes,
                 responses={**_NOT_FOUND, **_UNAVAILABLE, **_FORBIDDEN,
                            409: problem("not failed or cancelled")})
    async def retry_job(job_id: str) -> JobOut:
        """Run a failed or cancelled job again, with a fresh set of attempts."""
        async with _store():
            try:
                state = await app.retry(job_id)
            except JobNotFoundError:
                raise HTTPException(404, f"no job with id {job_id!r}") from None
            record = await app.get_job(job_id)
        if state is not JobState.PENDING or record is None:
            raise HTTPException(
                409, f"job {job_id} is {state.value}; only failed or cancelled jobs can be retried"
            )
        return JobOut.of(record)

    @router.delete("/jobs/{job_id}", status_code=204, name=f"{name}_delete_job",
                   operation_id=f"{name}_delete_job", response_class=Response,
                   dependencies=writes,
                   responses={**_NOT_FOUND, **_UNAVAILABLE, **_FORBIDDEN,
                              409: problem("the job is running")})
    async def delete_job(job_id: str) -> Response:
        """Forget a job that is not running (cancel it first)."""
        async with _store():
            if await app.get_job(job_id) is None:
                raise HTTPException(404, f"no job with id {job_id!r}")
            if not await app.delete(job_id):
                raise HTTPException(409, f"job {job_id} is running; cancel it first")
        return Response(status_code=204)

    @router.get("/jobs/{job_id}/events", name=f"{name}_job_events",
                operation_id=f"{name}_job_events",
                responses={200: {"content": {"text/event-stream": {}},
                                 "description": "state first, then every change"},
                           **_NOT_FOUND, **_UNAVAILABLE})
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        """Server-Sent Events: the job's current state, then every change, until it ends.
        Reconnect with `Last-Event-ID` to skip a state already received."""
        last = request.headers.get("last-event-id")
        updates = job_updates(app, job_id, keepalive=keepalive, last_event_id=last)
        # The first item is read before answering, so an unknown job is a real 404.
        first: list[tuple[str, dict[str, Any]] | None] = []
        async with _store():
            try:
                first.append(await anext(updates))
            except JobNotFoundError:
                raise HTTPException(404, f"no job with id {job_id!r}") from None
            except StopAsyncIteration:
                pass

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            try:
                for item in first:
                    yield _sse(item)
                async for item in updates:
                    yield _sse(item)
            except BackendUnavailableError:
                yield b"event: unavailable\ndata: {}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.websocket("/jobs/{job_id}/ws", name=f"{name}_job_ws")
    async def job_ws(websocket: WebSocket, job_id: str) -> None:
        """The same messages as the event stream, as JSON text frames; closes after the
        terminal state (code 1000), or 4404 for an unknown job. A foreign `Origin` is refused
        before the handshake completes: HTTP 403."""
        if not origin_allowed(websocket, origins):
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                await websocket.send_denial_response(
                    JSONResponse({"detail": "cross-origin WebSocket refused"}, 403))
            else:  # a server without the denial extension answers a close with 403
                await websocket.close(code=1008, reason="cross-origin WebSocket refused")
            return
        await websocket.accept()
        try:
            async for item in job_updates(app, job_id, keepalive=keepalive):
                if item is None:
                    await websocket.send_text('{"type":"keepalive"}')
                else:
                    await websocket.send_text(orjson.dumps({"type": "job", **item[1]}).decode())
        except JobNotFoundError:
            await websocket.close(code=4404, reason="no such job")
            return
        except BackendUnavailableError:
            await websocket.close(code=1013, reason="job store unavailable")
            return
        except WebSocketDisconnect:
            return
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1000)

    for task in expose:
        _add_enqueue_route(router, task, status_route, name, idempotency_ttl, writes,
                           max_body_bytes)
    # The schedule routes, under this router's dependencies; writes guard pause/resume/trigger.
    from backburner.fastapi.schedules import add_schedule_routes  # it imports `accepted`

    add_schedule_routes(router, app, write_dependencies=writes, name=name)
    # The queue routes likewise; writes guard pause/resume.
    from backburner.fastapi.queues import add_queue_routes

    add_queue_routes(router, app, write_dependencies=writes, name=name)
    close_methods(router)
    return router


def _job_links(name: str) -> dict[str, Any]:
    """OpenAPI links from an answer carrying a job's `id` to the operations on that job,
    so a client (or a stateful test) can follow them."""
    job_id = {"job_id": "$response.body#/id"}
    return {label: {"operationId": f"{name}_{op}", "parameters": job_id,
                    "description": f"{label} the job just started"}
            for label, op in (("Get", "get_job"), ("Cancel", "cancel_job"),
                              ("Retry", "retry_job"), ("Delete", "delete_job"))}


def _store_cursor(app: Backburner, cursor: str | None) -> str | None:
    """A cursor of the documented form in the form `app`'s store reads: a sequence number,
    and for Redis also the job id that breaks ties (empty: before every job of that
    number). So every cursor the schema allows is one the store takes."""
    if cursor is None:
        return None
    seq, _, job_id = cursor.partition(":")
    if type(app.backend).__module__.startswith("backburner.backends.redis"):
        return f"{seq}:{job_id}"
    return seq


def _add_enqueue_route(
    router: APIRouter, task: Task[Any, Any], status_route: str, name: str, ttl: float,
    dependencies: list[DependsParam], max_body_bytes: int,
) -> None:
    schema = task.signature.json_schema()
    parameters = inspect.signature(task.func).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        # Say what the signature refuses: a name it has no parameter for.
        schema = {**schema, "additionalProperties": False}
    # Idempotency keys of requests not finished yet (this process): a second request with
    # one of them is a 409, as the IETF Idempotency-Key draft asks, instead of racing the
    # first to the store. (Across processes the store's unique key still gives one job.)
    in_flight: set[str] = set()

    async def enqueue(request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        if key is None:
            return await _enqueue(request, None)
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise HTTPException(400, "Idempotency-Key must be 1-200 visible ASCII characters")
        if key in in_flight:
            raise HTTPException(
                409, "a request with this Idempotency-Key is still being processed; "
                "retry once it has been answered")
        in_flight.add(key)
        try:
            return await _enqueue(request, key)
        finally:
            in_flight.discard(key)

    async def _enqueue(request: Request, key: str | None) -> JSONResponse:
        raw = await _read_body(request, max_body_bytes)
        try:
            # orjson first: nesting past its depth limit is a decode error here, never a
            # RecursionError, and it refuses NaN. An integer past 64 bits is read exactly
            # (not as orjson's rounded float), so the argument check refuses it by name (422).
            body = codec.loads_exact(raw)
        except codec.PayloadError:
            raise HTTPException(
                400, "the body must be a JSON object of the task's arguments"
            ) from None
        if not isinstance(body, dict):
            raise HTTPException(422, "the body must be a JSON object of the task's arguments")
        _strict(task, body)
        target: Task[Any, Any] | BoundTask[Any, Any] = task
        if key is not None:
            # The store keeps one job per key for `ttl` seconds, whatever its state, so a
            # client retrying after a lost response gets the job it already started.
            target = task.options(unique_key=f"idempotency-key:{key}", unique_for=ttl)
        async with _store():
            try:
                job = await target.enqueue(**body)
            except InvalidArgumentsError as exc:
                raise HTTPException(422, str(exc)) from None
            if job.duplicate:
                first = await task.app.get_job(job.id)
                if first is not None and not _same_call(task, body, first):
                    raise HTTPException(
                        422, "this Idempotency-Key was used with other arguments (job "
                        f"{job.id}); use a new key for a different request")
        response = accepted(job, request, status_route=status_route)
        if job.duplicate:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    safe = "".join(c if c.isalnum() else "_" for c in task.name)
    router.add_api_route(
        f"/tasks/{task.name}", enqueue, methods=["POST"], status_code=202,
        name=f"{name}_enqueue_{safe}", operation_id=f"{name}_enqueue_{safe}",
        response_model=JobAccepted, summary=f"Enqueue {task.name}",
        description=(task.__doc__ or "").strip() or None, dependencies=dependencies,
        responses={202: {"description": "the job is stored", "links": _job_links(name)},
                   400: problem("not JSON, or a bad Idempotency-Key"),
                   403: problem("not allowed to enqueue"),
                   409: problem("a request with this "
                         "Idempotency-Key is still in flight"),
                   413: problem("the body is too large"),
                   422: {**VALIDATION_PROBLEM, "description": "arguments the task does not "
                         "take, or an Idempotency-Key reused with other arguments"},
                   **_UNAVAILABLE},
        openapi_extra={
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}},
            "parameters": [{
                "name": "Idempotency-Key", "in": "header", "required": False,
                "description": "repeat it to get the same job instead of a second one "
                "(with the same arguments: other arguments are a 422)",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                           "pattern": f"^{_IDEMPOTENCY_KEY.pattern}$"},
            }],
        },
    )


def _strict(task: Task[Any, Any], body: dict[str, Any]) -> None:
    """Each argument as the published schema says, without pydantic's lax conversions (a
    JSON `false` is not the integer 0, `"3"` is not 3): 422 naming the argument."""
    params = task.signature._params
    extra = next((p for p in params.values()
                  if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    for name, value in body.items():
        param = params.get(name, extra)
        if param is None or param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue  # the signature's own check names it
        try:
            param.adapter.validate_json(orjson.dumps(_integral(value)), strict=True)
        except orjson.JSONEncodeError:
            continue  # an integer past 64 bits: the signature's check names it
        except RecursionError:
            raise HTTPException(
                422, f"argument {name!r} of {task.name} is nested too deep to store") from None
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            raise HTTPException(
                422, f"argument {name!r} of {task.name}: {error['msg']}") from None


def _integral(value: Any) -> Any:
    """Integral floats as integers: 1.0 is an integer in JSON Schema, strict pydantic
    would refuse it for an `int`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _same_call(task: Task[Any, Any], body: dict[str, Any], first: JobRecord) -> bool:
    """Whether `body` is the payload `first` was stored with, compared as stored (JSON
    values, key order aside): a default spelt out is another payload, as the draft says."""
    args, kwargs = task.signature.encode((), body)
    return bool(orjson.loads(orjson.dumps([args, kwargs])) == [first.args, first.kwargs])


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass `limit` bytes."""
    too_large = HTTPException(413, f"the body is larger than the limit of {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def accepted(
    job: Job[Any], request: Request, *, status_route: str = "backburner_get_job"
) -> JSONResponse:
    """A 202 Accepted for a job an endpoint enqueued: `Location` of its status resource,
    `Retry-After` for pollers, and the URLs of its live streams in the body."""
    status_url = str(request.url_for(status_route, job_id=job.id))
    events_url = f"{status_url}/events"
    ws_url = f"{status_url}/ws".replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    task = getattr(getattr(job, "_task", None), "name", "")
    body = JobAccepted(id=job.id, task=task, state=job.initial_state, status_url=status_url,
                       events_url=events_url, websocket_url=ws_url)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=202,
        headers={"Location": status_url, "Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@contextlib.asynccontextmanager
async def _store() -> AsyncIterator[None]:
    """An unreachable store is a 503 with Retry-After, never a 500."""
    try:
        yield
    except BackendUnavailableError as exc:
        raise HTTPException(503, f"the job store is unavailable: {exc}",
                            headers={"Retry-After": "5"}) from None


def _sse(item: tuple[str, dict[str, Any]] | None) -> bytes:
    if item is None:
        return b": keep-alive\n\n"
    ident, update = item
    return b"id: " + ident.encode() + b"\nevent: job\ndata: " + orjson.dumps(update) + b"\n\n"


