"""The live updates of one job in `job_router`: Server-Sent Events (`fastapi.sse`) and a
WebSocket, both fed by `streams.job_updates`."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.websockets import WebSocketDisconnect

from backburner.errors import BackendUnavailableError, JobNotFoundError
from backburner.fastapi.common import JOB_NOT_FOUND, UNAVAILABLE, ContextDep, store_access
from backburner.fastapi.origins import origin_allowed
from backburner.fastapi.streams import (
    Update,
    job_event,
    job_updates,
    keepalive_comment,
    retry_hint,
    signal,
)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenedUpdates:
    """A job's updates with the first one already read (none when `Last-Event-ID` named
    the current state of a job that has ended)."""

    first: tuple[Update | None, ...]
    rest: AsyncIterator[Update | None]


async def opened_updates(
    job_id: str, request: Request, context: ContextDep,
) -> AsyncIterator[OpenedUpdates]:
    """Dependency: the first update is read before answering, so an unknown job is a real
    404 (and an unreachable store a 503), not an event in a 200 stream. Closed once the
    response is over (a dependency with `yield` ends after the stream)."""
    updates = job_updates(context.app, job_id, keepalive=context.keepalive,
                          last_event_id=request.headers.get("last-event-id"))
    try:
        first: tuple[Update | None, ...] = ()
        async with store_access():
            try:
                first = (await anext(updates),)
            except JobNotFoundError:
                raise HTTPException(404, f"no job with id {job_id!r}") from None
            except StopAsyncIteration:
                pass
        yield OpenedUpdates(first, updates)
    finally:
        await updates.aclose()


def _frame(item: Update | None) -> ServerSentEvent:
    return keepalive_comment() if item is None else job_event(item[1], item[0])


async def job_events(
    updates: Annotated[OpenedUpdates, Depends(opened_updates)],
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: the job's current state, then every change, until it ends.
    Reconnect with `Last-Event-ID` to skip a state already received."""
    yield retry_hint()
    try:
        for item in updates.first:
            yield _frame(item)
        async for item in updates.rest:
            yield _frame(item)
    except BackendUnavailableError:
        yield signal("unavailable")


async def job_ws(websocket: WebSocket, job_id: str, context: ContextDep) -> None:
    """The same messages as the event stream, as JSON text frames; closes after the
    terminal state (code 1000), or 4404 for an unknown job. A foreign `Origin` is refused
    before the handshake completes: HTTP 403."""
    if not origin_allowed(websocket, context.origins):
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(
                JSONResponse({"detail": "cross-origin WebSocket refused"}, 403))
        else:  # a server without the denial extension answers a close with 403
            await websocket.close(code=1008, reason="cross-origin WebSocket refused")
        return
    await websocket.accept()
    try:
        async for item in job_updates(context.app, job_id, keepalive=context.keepalive):
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


def add_live_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route(
        "/jobs/{job_id}/events", job_events, methods=["GET"],
        response_class=EventSourceResponse, name=f"{name}_job_events",
        operation_id=f"{name}_job_events",
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "state first, then every change"},
                   **JOB_NOT_FOUND, **UNAVAILABLE})
    router.add_api_websocket_route("/jobs/{job_id}/ws", job_ws, name=f"{name}_job_ws")
