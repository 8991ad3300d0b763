"""One job's page: its record, timeline and links, live state and progress over
Server-Sent Events (`fastapi.sse`), and the actions on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from backburner.dashboard import reads, security
from backburner.dashboard.board import ACTIONS, BoardDep, RoleDep
from backburner.dashboard.presentation import pretty, timeline
from backburner.errors import BackendUnavailableError, JobNotFoundError
from backburner.fastapi.common import store_access
from backburner.fastapi.streams import (
    job_event,
    job_updates,
    keepalive_comment,
    retry_hint,
    signal,
)

LIVE_FIELDS = ("state", "attempt", "progress")
"""What the event stream sends: what the page updates in place."""


async def job(request: Request, job_id: str, board: BoardDep, role: RoleDep) -> Response:
    async with store_access():
        record = await board.app.get_job(job_id)
    if record is None:
        return board.error(request, role, 404, f"no job with id {job_id!r}")
    shown = board.shown(record)
    async with store_access():
        links = await reads.links(board, record)
        stall = (await reads.stalls(board, [shown])).get(record.id)
    return board.page(request, "job.html", role, job=shown, links=links, stall=stall,
                      timeline=timeline(shown), result=pretty(shown.result),
                      events_url=board.url(request, "job_events", job_id=job_id))


def security_headers(response: Response) -> None:
    """Dependency: the pages' security headers on a stream (set before it starts). Its
    `Cache-Control: no-store` comes after the `no-cache` FastAPI gives every event stream:
    both apply."""
    response.headers.update(security.SECURITY_HEADERS)


async def job_events(job_id: str, board: BoardDep) -> AsyncIterator[ServerSentEvent]:
    """State and progress only (what the page updates in place), each from the
    redacted record (a progress message may carry what the hook hides); the page
    reloads for the result, so the redaction of a full render applies there too."""
    yield retry_hint()
    try:
        async for item in job_updates(board.app, job_id, keepalive=15.0, redact=board.redact):
            if item is None:
                yield keepalive_comment()
            else:
                yield job_event({k: item[1][k] for k in LIVE_FIELDS})
    except JobNotFoundError:
        yield signal("gone")
    except BackendUnavailableError:
        yield signal("unavailable")


async def job_action(request: Request, job_id: str, action: str, board: BoardDep,
                     role: RoleDep) -> Response:
    form = await board.form(request, role)
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r}")
    async with store_access():
        done = await reads.apply(board, action, [job_id])
    fallback = board.url(request, "jobs") if action == "delete" else \
        board.url(request, "job", job_id=job_id)
    return board.back(request, form, fallback, action, done, 1 - done)


def add_job_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/jobs/{job_id}", job, methods=["GET"], name=f"{name}_job")
    router.add_api_route(
        "/jobs/{job_id}/events", job_events, methods=["GET"], name=f"{name}_job_events",
        response_class=EventSourceResponse, dependencies=[Depends(security_headers)])
    router.add_api_route("/jobs/{job_id}/{action}", job_action, methods=["POST"],
                         name=f"{name}_job_action")
