"""The workers, alive or not, with the jobs each is running."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from backburner.backends.protocol import JobFilter
from backburner.dashboard.board import BoardDep, RoleDep
from backburner.fastapi.common import store_access
from backburner.job import JobRecord, JobState


async def workers(request: Request, board: BoardDep, role: RoleDep) -> Response:
    backend = board.app.backend
    async with store_access():
        found = await backend.list_workers()
        now = await backend.now()
        running = await backend.list_jobs(JobFilter(states=(JobState.RUNNING,)), 500)
    by_worker: dict[str, list[JobRecord]] = {}
    for j in running.jobs:
        by_worker.setdefault(j.worker_id or "", []).append(board.shown(j))
    rows = [{"info": w, "age": now - w.heartbeat_at,
             "alive": now - w.heartbeat_at <= board.stale_after,
             "jobs": by_worker.get(w.id, [])}
            for w in sorted(found, key=lambda w: w.started_at)]
    return board.page(request, "workers.html", role, workers=rows, now=now)


def add_worker_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route("/workers", workers, methods=["GET"], name=f"{name}_workers")
