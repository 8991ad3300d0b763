"""Failed jobs grouped by fingerprint, and a retry of one group."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backburner.dashboard.board import BoardDep, RoleDep
from backburner.failures import failure_groups, retry_failure_group
from backburner.fastapi.common import store_access


async def failures(request: Request, board: BoardDep, role: RoleDep) -> Response:
    async with store_access():
        groups = await failure_groups(board.app, scan=board.failure_scan)
    return board.page(request, "failures.html", role, groups=groups, scan=board.failure_scan)


async def failure_retry(request: Request, group: str, board: BoardDep,
                        role: RoleDep) -> Response:
    form = await board.form(request, role)
    async with store_access():
        done = await retry_failure_group(board.app, group, scan=board.failure_scan)
    return board.back(request, form, board.url(request, "failures"), "retry", done)


def add_failure_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/failures", failures, methods=["GET"], name=f"{name}_failures")
    router.add_api_route("/failures/{group}/retry", failure_retry, methods=["POST"],
                         name=f"{name}_failure_retry")
