"""An action on every job matching the listing's filter: a count to confirm (nothing changes
on a GET), then the action, on at most the count confirmed."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from backburner import bulk
from backburner.dashboard.board import BoardDep, RoleDep
from backburner.dashboard.requests import filters, integer, job_filter, one
from backburner.errors import ConfigurationError
from backburner.fastapi.common import store_access


async def bulk_confirm(request: Request, board: BoardDep, role: RoleDep) -> Response:
    """What an action on every job matching the filter would touch: the count, and
    a button to confirm (nothing changes on a GET)."""
    query = filters(request.query_params)
    action = request.query_params.get("action", "")
    try:
        target = bulk.narrowed(job_filter(board.app, query), action)
    except ConfigurationError as exc:
        return board.error(request, role, 400, str(exc))
    async with store_access():
        count = 0 if target is None else await board.app.count_jobs(target)
    return board.page(request, "bulk_confirm.html", role, action=action, query=query,
                      count=count, applies=[s.value for s in bulk.ACTION_STATES[action]],
                      back_url=board.url(request, "jobs", query))


async def bulk_apply(request: Request, board: BoardDep, role: RoleDep) -> Response:
    form = await board.form(request, role)
    query = filters(form)
    action = one(form, "action") or ""
    try:
        flt = job_filter(board.app, query)
        bulk.narrowed(flt, action)
    except ConfigurationError as exc:
        raise HTTPException(400, str(exc)) from None
    # At most the count the user confirmed: jobs that matched only later are not
    # touched by a confirmation that never counted them.
    confirmed = integer(one(form, "count")) or 0
    result = bulk.BulkResult(0, 0, 0)
    if confirmed > 0:
        async with store_access():
            result = await board.app.bulk(flt, cast(bulk.Action, action), limit=confirmed)
    return board.back(request, form, board.url(request, "jobs", query), action,
                      result.changed, result.skipped)


def add_bulk_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/jobs-bulk", bulk_confirm, methods=["GET"],
                         name=f"{name}_bulk_confirm")
    router.add_api_route("/jobs-bulk", bulk_apply, methods=["POST"], name=f"{name}_bulk")
