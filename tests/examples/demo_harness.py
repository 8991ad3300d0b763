"""Helpers for the example app's tests, over real HTTP: uvicorn on a free port in the
test's event loop, jobs in a real SQLite file, mail to a real local SMTP server (aiosmtpd),
webhooks to a real local HTTP server (allow-listed, as R23 permits for tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink
from examples.demo.ssrf import AllowRule, parse_allow_list
from examples.demo.web import create_app

TERMINAL = ("completed", "failed", "cancelled")


@asynccontextmanager
async def serve(app: Any, **tls: Any) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1, a free port; yields its base URL.
    `tls`: uvicorn's ssl_certfile/ssl_keyfile, for HTTPS."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", **tls))
    # The test runner owns the signals, not this in-process server.
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during startup")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def allow(target: Target) -> tuple[AllowRule, ...]:
    """Allow-list exactly the target's port on loopback: every other internal address,
    loopback on other ports included, stays blocked."""
    port = int(target.url.rsplit(":", 1)[1])
    return parse_allow_list(f"127.0.0.1/32:{port}")


@contextmanager
def _no_signals() -> Iterator[None]:
    yield


@dataclass
class Target:
    """A webhook/fetch target that records every request it gets."""

    url: str = ""
    hits: list[tuple[str, float, dict[str, str], bytes]] = field(default_factory=list)
    flaky: dict[str, int] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return [h[0] for h in self.hits]


def target_app(target: Target) -> Starlette:
    async def record(request: Request) -> Response:
        body = await request.body()
        target.hits.append((request.url.path, time.monotonic(), dict(request.headers), body))
        name = request.path_params.get("name", "")
        if request.url.path.startswith("/fail"):
            return JSONResponse({"error": "always failing"}, 500)
        if request.url.path.startswith("/flaky"):
            left = target.flaky.get(name, 2)
            target.flaky[name] = left - 1
            if left > 0:
                return JSONResponse({"error": "not yet"}, 503)
        if request.url.path.startswith("/redirect"):
            return RedirectResponse(request.query_params["to"], 302)
        return JSONResponse({"ok": True})

    routes = [Route(p, record, methods=["GET", "POST"])
              for p in ("/ok", "/fail", "/flaky/{name}", "/redirect", "/internal")]
    return Starlette(routes=routes)


@dataclass
class Demo:
    base: str
    client: httpx2.AsyncClient
    settings: Settings

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def wait(self, job_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
        states = states or TERMINAL
        deadline = time.monotonic() + timeout
        while True:
            body = await self.job(job_id)
            if body["state"] in states:
                return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.02)

    async def jobs_of(self, task: str, *states: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"task": task}
        if states:
            params["state"] = list(states)
        response = await self.client.get("/jobs", params=params)
        return response.json()["jobs"]  # type: ignore[no-any-return]

    async def wait_jobs(self, task: str, count: int, *states: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while True:
            found = await self.jobs_of(task, *(states or TERMINAL))
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, (task, found)
            await asyncio.sleep(0.02)


DemoFactory = Callable[..., Awaitable[Demo]]


@asynccontextmanager
async def running_demo(
    settings: Settings, sink: SmtpSink | None = None, *, worker: bool = True, **options: Any
) -> AsyncIterator[Demo]:
    app = create_app(settings, sink=sink, worker=worker, concurrency=8, worker_options=options)
    async with serve(app) as base, httpx2.AsyncClient(base_url=base, timeout=30) as client:
        yield Demo(base, client, settings)


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


