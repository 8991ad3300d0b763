"""The overview (queues, workers, recent failures, history charts) and the files the pages
load."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from backburner.backends.protocol import JobFilter
from backburner.dashboard.board import BoardDep, RoleDep
from backburner.fastapi.common import store_access
from backburner.job import JobState

STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8",
                "dashboard.js": "text/javascript; charset=utf-8",
                "favicon.svg": "image/svg+xml"}


async def overview(request: Request, board: BoardDep, role: RoleDep) -> Response:
    sampler = board.sampler
    async with store_access():
        sample = await sampler.latest()
        failed = await board.app.backend.list_jobs(JobFilter(states=(JobState.FAILED,)), 10)
        paused = {name for name, state in (await board.app.backend.queue_states()).items()
                  if state.paused}
    alive = [w for w in sample.workers if sample.at - w.heartbeat_at <= board.stale_after]
    queues = []
    for queue, q in sample.queues.items():
        serving = [w for w in alive if queue in w.queues]
        queues.append({
            "name": queue, "sample": q, "charts": sampler.charts(queue),
            "workers": len(serving), "paused": queue in paused,
            "stalled": q.pending > 0 and not serving and queue not in paused,
            "growing": sampler.backlog_growing(queue),
        })
    return board.page(request, "overview.html", role, queues=queues, workers=alive,
                      all_workers=sample.workers, samples=len(sampler.samples),
                      sample_every=sampler.interval, history_minutes=sampler.window / 60,
                      failures=[board.shown(j) for j in failed.jobs])


async def overview_bare(request: Request, board: BoardDep) -> Response:
    return RedirectResponse(board.root(request), 307)


async def static(file: str) -> Response:
    # Behind the auth too (R21: every route): the browser sends the page's credentials
    # (cookie, Basic) with its same-origin script and stylesheet.
    if file not in STATIC_FILES:
        raise HTTPException(404, "no such file")
    body = (files("backburner.dashboard") / "static" / file).read_bytes()
    return Response(body, media_type=STATIC_FILES[file],
                    headers={"Cache-Control": "private, max-age=300",
                             "X-Content-Type-Options": "nosniff"})


async def favicon(request: Request, board: BoardDep) -> Response:
    # The layout links the SVG; a browser that asks for the ICO under the dashboard anyway
    # (a bookmark, an old client) is sent there instead of a 404.
    return RedirectResponse(board.url(request, "static", file="favicon.svg"), 308)


def add_overview_routes(router: APIRouter, *, name: str, bare: bool) -> None:
    """`bare`: also answer the router's prefix without its slash (a redirect to it)."""
    router.add_api_route("/", overview, methods=["GET"], name=f"{name}_overview")
    if bare:
        router.add_api_route("", overview_bare, methods=["GET"], name=f"{name}_overview_bare")
    router.add_api_route("/static/{file}", static, methods=["GET"], name=f"{name}_static")
    router.add_api_route("/favicon.ico", favicon, methods=["GET"], name=f"{name}_favicon")
