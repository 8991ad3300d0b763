"""The queues with their counts, and pausing or resuming one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from backburner.dashboard.board import BoardDep, RoleDep
from backburner.errors import ConfigurationError
from backburner.fastapi.common import store_access


async def queues(request: Request, board: BoardDep, role: RoleDep) -> Response:
    async with store_access():
        infos = await board.app.queues()
    return board.page(request, "queues.html", role,
                      queues=[(q, {s.value: n for s, n in q.counts.items()}) for q in infos])


async def queue_action(request: Request, queue: str, action: str, board: BoardDep,
                       role: RoleDep) -> Response:
    form = await board.form(request, role)
    if action not in ("pause", "resume"):
        raise HTTPException(404, f"no action {action!r}")
    async with store_access():
        try:
            if action == "pause":
                await board.app.pause_queue(queue)
            else:
                await board.app.resume_queue(queue)
        except ConfigurationError as exc:
            raise HTTPException(400, str(exc)) from None
    return board.back(request, form, board.url(request, "queues"), action, 1)


def add_queue_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/queues", queues, methods=["GET"], name=f"{name}_queues")
    router.add_api_route("/queues/{queue:path}/{action}", queue_action, methods=["POST"],
                         name=f"{name}_queue_action")
