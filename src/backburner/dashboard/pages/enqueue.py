"""Enqueue a job by hand: the offered tasks, and a form drawn from a task's signature."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from backburner.dashboard.board import BoardDep, RoleDep
from backburner.dashboard.forms import parse
from backburner.dashboard.presentation import task_fields
from backburner.errors import InvalidArgumentsError
from backburner.fastapi.common import store_access


async def enqueue_index(request: Request, board: BoardDep, role: RoleDep) -> Response:
    offered = sorted(board.offered().values(), key=lambda t: t.name)
    return board.page(request, "enqueue_index.html", role, tasks=offered)


async def enqueue_form(request: Request, task: str, board: BoardDep, role: RoleDep) -> Response:
    found = board.offered().get(task)
    if found is None:
        return board.error(request, role, 404, f"no task named {task!r}")
    return board.page(request, "enqueue.html", role, task=found, fields=task_fields(found),
                      values={}, errors={}, error=None)


async def enqueue_post(request: Request, task: str, board: BoardDep, role: RoleDep) -> Response:
    form = await board.form(request, role)
    found = board.offered().get(task)
    if found is None:
        raise HTTPException(404, f"no task named {task!r}")
    fields = task_fields(found)
    values = {k: v[0] for k, v in form.items() if v}
    kwargs, errors = parse(fields, values)
    error = None
    if not errors:
        async with store_access():
            try:
                job = await found.enqueue(**kwargs)
            except InvalidArgumentsError as exc:
                error = str(exc)
            else:
                return board.back(request, {}, board.url(request, "job", job_id=job.id),
                                  "enqueue", 1)
    return board.page(request, "enqueue.html", role, 422, task=found, fields=fields,
                      values=values, errors=errors, error=error)


def add_enqueue_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/enqueue", enqueue_index, methods=["GET"],
                         name=f"{name}_enqueue_index")
    router.add_api_route("/enqueue/{task:path}", enqueue_form, methods=["GET"],
                         name=f"{name}_enqueue")
    router.add_api_route("/enqueue/{task:path}", enqueue_post, methods=["POST"],
                         name=f"{name}_enqueue_post")
