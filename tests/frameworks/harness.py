"""The scenario both framework tests run against a real uvicorn process serving a small
Starlette or Litestar app (starlette_app.py, litestar_app.py) on a real store, with the
embedded worker: enqueue through the app's own endpoint (202 + Location), follow the
Location into the mounted job router, read the job's SSE stream to its terminal event,
check the roles (401 without credentials, 403 for a read role's change, the dashboard
answering a reader), then SIGTERM: exit code 0 and the worker stopped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets
from child_process import Proc, processes
from services import BACKENDS, TEST_URLS, backend_url, destroy_store, free_port

HERE = Path(__file__).resolve().parent
READ = {"Authorization": "Bearer read-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
STORES = [kind for kind in ("sqlite", "redis", "postgres") if kind in BACKENDS]
"""SQLite, and one run on each server store (unless BACKBURNER_TEST_BACKENDS leaves it out)."""


async def exercise(module: str, kind: str, tmp_path: Path, root_path: str = "") -> None:
    url = backend_url(kind, tmp_path)
    try:
        await _exercise(module, url, tmp_path, root_path)
    finally:
        if TEST_URLS[kind].server:
            # A sync helper running its own loop: off this one.
            await asyncio.to_thread(destroy_store, url)


async def _exercise(module: str, url: str, tmp_path: Path, root_path: str) -> None:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", f"{module}:api", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]
    if root_path:
        # Behind a proxy that keeps the prefix: every link must carry it.
        args += ["--root-path", root_path]
    env = {**os.environ, "BB_TEST_URL": url, "PYTHONUNBUFFERED": "1"}
    with processes() as started:
        server = Proc(args, env, tmp_path / "server.log")
        started.append(server)
        await server.wait_for("Application startup complete")
        # `--root-path`: as behind a proxy that strips the prefix on the way in, so the
        # requests go to `base` and the URLs handed out must start with `public`.
        base = f"http://127.0.0.1:{port}"
        site = Site(base, base + root_path)
        async with httpx.AsyncClient(timeout=10) as client:
            job_id = await _enqueue_and_follow(client, site)
            await _dashboard(client, site, job_id)
        code = server.stop(signal.SIGTERM)
        log = server.text()
        # uvicorn (0.29+) ends a clean shutdown by raising the signal it caught again, so
        # its parent sees SIGTERM; the lifespan's own outcome is in the log.
        assert code in (0, -signal.SIGTERM), log
        assert "Application shutdown complete" in log, log
        assert re.search(r"worker \S+ stopped after \d+ job\(s\)", log), log
        assert "Traceback" not in log, log


@dataclass(frozen=True)
class Site:
    base: str
    """Where the server listens."""
    public: str
    """Where clients see it: `base` and the root path."""

    def follow(self, url: str) -> str:
        """A URL the app handed out (http or ws), as the proxy would pass it on."""
        scheme, rest = url.split("://", 1)
        public = self.public.removeprefix("http://")
        assert rest.startswith(public + "/"), url
        return f"{scheme}://{self.base.removeprefix('http://')}{rest.removeprefix(public)}"


async def _enqueue_and_follow(client: httpx.AsyncClient, site: Site) -> str:
    answer = await client.post(f"{site.base}/reports", params={"steps": 3})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    # The mount prefix (and the proxy's root path) are in every URL the app hands out.
    assert answer.headers["location"] == f"{site.public}/bb/jobs/{body['id']}"
    assert body["events_url"] == f"{answer.headers['location']}/events"
    assert answer.headers["retry-after"] == "1"
    location = site.follow(answer.headers["location"])
    events = site.follow(body["events_url"])

    assert (await client.get(location)).status_code == 401
    assert (await client.get(events)).status_code == 401

    updates = await _read_stream(client, events)
    assert updates[-1]["state"] == "completed", updates
    assert updates[-1]["result"] == 6

    status = await client.get(location, headers=READ)
    assert status.status_code == 200, status.text
    assert status.json()["state"] == "completed"
    assert status.json()["result"] == 6

    # A reader watches but cannot change a job; an admin can.
    refused = await client.post(f"{location}/retry", headers=READ)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    removed = await client.delete(location, headers=ADMIN)
    assert removed.status_code == 204, removed.text
    assert (await client.get(location, headers=READ)).status_code == 404

    # A second job stays for the dashboard's job page.
    again = await client.post(f"{site.base}/reports", params={"steps": 1})
    assert again.status_code == 202, again.text
    last = await _read_stream(client, site.follow(again.json()["events_url"]))
    assert last[-1]["state"] == "completed", last
    # The WebSocket goes through the mount too: the snapshot of the finished job, then
    # the server closes.
    ws_url = site.follow(again.json()["websocket_url"])
    async with asyncio.timeout(30), websockets.connect(ws_url, additional_headers=READ) as socket:
        messages = [json.loads(message) async for message in socket]
    assert messages[-1]["state"] == "completed", messages
    return str(again.json()["id"])


async def _read_stream(client: httpx.AsyncClient, events_url: str) -> list[dict[str, Any]]:
    """Every `event: job` update of the stream, which the server ends after the terminal
    one; bounded by a timeout."""
    updates: list[dict[str, Any]] = []
    async with asyncio.timeout(30), client.stream("GET", events_url, headers=READ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "job":
                updates.append(json.loads(line.removeprefix("data: ")))
    assert updates, "the stream ended without an update"
    return updates


async def _dashboard(client: httpx.AsyncClient, site: Site, job_id: str) -> None:
    assert (await client.get(f"{site.base}/dashboard/")).status_code == 401
    page = await client.get(f"{site.base}/dashboard/", headers=READ)
    assert page.status_code == 200, page.text
    root = site.public.removeprefix(site.base)
    assert f'href="{root}/dashboard/jobs"' in page.text, page.text
    detail = await client.get(f"{site.base}/dashboard/jobs/{job_id}", headers=READ)
    assert detail.status_code == 200, detail.text
    assert job_id in detail.text
