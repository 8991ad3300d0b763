"""The tasks resource of `job_router`: `POST /tasks/{name}` enqueues an exposed task with
the JSON body as its arguments (202 + Location), once per `Idempotency-Key`."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from backburner import codec
from backburner.errors import InvalidArgumentsError
from backburner.fastapi.common import (
    UNAVAILABLE,
    ContextDep,
    accepted,
    attached,
    bind,
    store_access,
)
from backburner.fastapi.problems import VALIDATION_PROBLEM, problem
from backburner.fastapi.schemas import JobAccepted
from backburner.job import JobRecord
from backburner.task import BoundTask, Task

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Exposed:
    """One exposed task of one router, bound to its route (compared by identity: it holds
    the route's keys in flight)."""

    task: Task[Any, Any]
    ttl: float
    """Seconds the store keeps one job per `Idempotency-Key`."""
    max_body_bytes: int
    in_flight: set[str] = dataclasses.field(default_factory=set)
    """Idempotency keys of requests not answered yet (this process): a second request with
    one of them is a 409, as the IETF Idempotency-Key draft asks, instead of racing the
    first to the store. (Across processes the store's unique key still gives one job.)"""


def exposed_task(connection: HTTPConnection) -> Exposed:
    """Dependency: the task of the enqueue route the request came through."""
    return attached(connection, Exposed)


async def enqueue(
    request: Request, exposed: Annotated[Exposed, Depends(exposed_task)], context: ContextDep,
) -> JSONResponse:
    key = request.headers.get("idempotency-key")
    if key is None:
        return await _enqueue(request, exposed, context.status_route, None)
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise HTTPException(400, "Idempotency-Key must be 1-200 visible ASCII characters")
    if key in exposed.in_flight:
        raise HTTPException(
            409, "a request with this Idempotency-Key is still being processed; "
            "retry once it has been answered")
    exposed.in_flight.add(key)
    try:
        return await _enqueue(request, exposed, context.status_route, key)
    finally:
        exposed.in_flight.discard(key)


async def _enqueue(
    request: Request, exposed: Exposed, status_route: str, key: str | None,
) -> JSONResponse:
    task = exposed.task
    raw = await read_body(request, exposed.max_body_bytes)
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
    check_strictly(task, body)
    target: Task[Any, Any] | BoundTask[Any, Any] = task
    if key is not None:
        # The store keeps one job per key for `ttl` seconds, whatever its state, so a
        # client retrying after a lost response gets the job it already started.
        target = task.options(unique_key=f"idempotency-key:{key}", unique_for=exposed.ttl)
    async with store_access():
        try:
            job = await target.enqueue(**body)
        except InvalidArgumentsError as exc:
            raise HTTPException(422, str(exc)) from None
        if job.duplicate:
            first = await task.app.get_job(job.id)
            if first is not None and not same_call(task, body, first):
                raise HTTPException(
                    422, "this Idempotency-Key was used with other arguments (job "
                    f"{job.id}); use a new key for a different request")
    response = accepted(job, request, status_route=status_route)
    if job.duplicate:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def add_enqueue_route(
    router: APIRouter, task: Task[Any, Any], *, name: str, ttl: float,
    writes: Sequence[DependsParam], max_body_bytes: int,
) -> None:
    schema = task.signature.json_schema()
    parameters = inspect.signature(task.func).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        # Say what the signature refuses: a name it has no parameter for.
        schema = {**schema, "additionalProperties": False}
    safe = "".join(c if c.isalnum() else "_" for c in task.name)
    router.add_api_route(
        f"/tasks/{task.name}", enqueue, methods=["POST"], status_code=202,
        name=f"{name}_enqueue_{safe}", operation_id=f"{name}_enqueue_{safe}",
        response_model=JobAccepted, summary=f"Enqueue {task.name}",
        description=(task.__doc__ or "").strip() or None,
        # The binding first: the route's own state (its task, its keys in flight).
        dependencies=[bind(Exposed(task, ttl, max_body_bytes)), *writes],
        responses={202: {"description": "the job is stored", "links": job_links(name)},
                   400: problem("not JSON, or a bad Idempotency-Key"),
                   403: problem("not allowed to enqueue"),
                   409: problem("a request with this Idempotency-Key is still in flight"),
                   413: problem("the body is too large"),
                   422: {**VALIDATION_PROBLEM, "description": "arguments the task does not "
                         "take, or an Idempotency-Key reused with other arguments"},
                   **UNAVAILABLE},
        openapi_extra={
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}},
            "parameters": [{
                "name": "Idempotency-Key", "in": "header", "required": False,
                "description": "repeat it to get the same job instead of a second one "
                "(with the same arguments: other arguments are a 422)",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                           "pattern": f"^{IDEMPOTENCY_KEY.pattern}$"},
            }],
        },
    )


def job_links(name: str) -> dict[str, Any]:
    """OpenAPI links from an answer carrying a job's `id` to the operations on that job,
    so a client (or a stateful test) can follow them."""
    job_id = {"job_id": "$response.body#/id"}
    return {label: {"operationId": f"{name}_{op}", "parameters": job_id,
                    "description": f"{label} the job just started"}
            for label, op in (("Get", "get_job"), ("Cancel", "cancel_job"),
                              ("Retry", "retry_job"), ("Delete", "delete_job"))}


def check_strictly(task: Task[Any, Any], body: dict[str, Any]) -> None:
    """Each argument as the published schema says, without pydantic's lax conversions (a
    JSON `false` is not the integer 0, `"3"` is not 3): 422 naming the argument."""
    params = task.signature.parameters
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


def same_call(task: Task[Any, Any], body: dict[str, Any], first: JobRecord) -> bool:
    """Whether `body` is the payload `first` was stored with, compared as stored (JSON
    values, key order aside): a default spelt out is another payload, as the draft says."""
    args, kwargs = task.signature.encode((), body)
    return bool(orjson.loads(orjson.dumps([args, kwargs])) == [first.args, first.kwargs])


async def read_body(request: Request, limit: int) -> bytes:
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
