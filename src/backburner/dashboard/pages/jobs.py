"""The job listing (filters, pages, CSV export) and the actions on the jobs ticked in it."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from backburner.backends.protocol import JobFilter
from backburner.dashboard import reads, security
from backburner.dashboard.board import ACTIONS, BoardDep, Dashboard, RoleDep
from backburner.dashboard.presentation import as_json, iso
from backburner.dashboard.requests import filters, job_filter, one, page_size
from backburner.errors import ConfigurationError
from backburner.fastapi.common import store_access

CSV_LIMIT = 10_000
CSV_COLUMNS = ["id", "task", "queue", "state", "attempt", "max_attempts", "created_at",
               "started_at", "finished_at", "args", "kwargs", "result", "last_error"]


async def jobs(request: Request, board: BoardDep, role: RoleDep) -> Response:
    query = filters(request.query_params)
    try:
        flt = job_filter(board.app, query)
    except ConfigurationError as exc:
        return board.error(request, role, 400, str(exc))
    limit = page_size(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor") or None
    async with store_access():
        try:
            found = await board.app.backend.list_jobs(flt, limit, cursor)
        except ConfigurationError as exc:
            return board.error(request, role, 400, str(exc))
        known = await reads.queue_names(board, found.jobs, query["queue"])
        listed = [board.shown(j) for j in found.jobs]
        stalls = await reads.stalls(board, listed)
    next_url = None if found.next_cursor is None else board.url(
        request, "jobs", {**query, "cursor": found.next_cursor, "limit": limit})
    return board.page(
        request, "jobs.html", role, jobs=listed, stalls=stalls, query=query,
        next_url=next_url, first_url=board.url(request, "jobs", query) if cursor else None,
        csv_url=board.url(request, "jobs_csv", query), queues=known,
        bulk_urls={a: board.url(request, "bulk_confirm", {**query, "action": a})
                   for a in ACTIONS},
        task_names=sorted(board.app.tasks))


async def jobs_csv(request: Request, board: BoardDep) -> Response:
    try:
        flt = job_filter(board.app, filters(request.query_params))
    except ConfigurationError as exc:
        raise HTTPException(400, str(exc)) from None
    return StreamingResponse(_csv_rows(board, flt), media_type="text/csv; charset=utf-8",
                             headers={**security.SECURITY_HEADERS,
                                      "Content-Disposition": 'attachment; filename="jobs.csv"'})


async def _csv_rows(board: Dashboard, flt: JobFilter) -> AsyncIterator[str]:
    """At most CSV_LIMIT jobs, a page of the store at a time, each redacted as shown."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    cursor, sent = None, 0
    while sent < CSV_LIMIT:
        page = await board.app.backend.list_jobs(flt, 500, cursor)
        for raw in page.jobs:
            j = board.shown(raw)
            writer.writerow([security.csv_cell(str(v)) for v in (
                j.id, j.task, j.queue, j.state.value, j.attempt, j.max_attempts,
                iso(j.created_at), iso(j.started_at), iso(j.finished_at),
                as_json(j.args), as_json(j.kwargs), as_json(j.result),
                j.last_error.message if j.last_error else "")])
        sent += len(page.jobs)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        cursor = page.next_cursor
        if cursor is None:
            break


async def selection(request: Request, board: BoardDep, role: RoleDep) -> Response:
    form = await board.form(request, role)
    action = one(form, "action") or ""
    if action not in ACTIONS:
        raise HTTPException(400, "action must be retry, cancel or delete")
    ids = form.get("ids", [])[:1000]
    async with store_access():
        done = await reads.apply(board, action, ids)
    return board.back(request, form, board.url(request, "jobs"), action, done, len(ids) - done)


def add_listing_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/jobs", jobs, methods=["GET"], name=f"{name}_jobs")
    router.add_api_route("/jobs.csv", jobs_csv, methods=["GET"], name=f"{name}_jobs_csv")
    router.add_api_route("/selection", selection, methods=["POST"], name=f"{name}_selection")
