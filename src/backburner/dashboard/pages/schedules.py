"""The periodic schedules with their next ticks and last run; pause, resume, trigger."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from backburner.dashboard.board import BoardDep, RoleDep
from backburner.fastapi.common import store_access
from backburner.fastapi.schedules import last_tick


async def schedules(request: Request, board: BoardDep, role: RoleDep) -> Response:
    async with store_access():
        infos = await board.app.schedules(runs=3)
        rows = [{"info": s, "last": await last_tick(board.app, s)} for s in infos]
    return board.page(request, "schedules.html", role, schedules=rows)


async def schedule_action(request: Request, schedule: str, action: str, board: BoardDep,
                          role: RoleDep) -> Response:
    form = await board.form(request, role)
    app = board.app
    if schedule not in app.periodic_schedules:
        raise HTTPException(404, f"no schedule named {schedule!r}")
    if action not in ("pause", "resume", "trigger"):
        raise HTTPException(404, f"no action {action!r}")
    async with store_access():
        if action == "pause":
            await app.pause_schedule(schedule)
        elif action == "resume":
            await app.resume_schedule(schedule)
        else:
            triggered = await app.trigger_schedule(schedule)
            return board.back(request, {}, board.url(request, "job", job_id=triggered.id),
                              "trigger", 1)
    return board.back(request, form, board.url(request, "schedules"), action, 1)


def add_schedule_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/schedules", schedules, methods=["GET"], name=f"{name}_schedules")
    router.add_api_route("/schedules/{schedule:path}/{action}", schedule_action,
                         methods=["POST"], name=f"{name}_schedule_action")
