"""Acceptance, with real processes: the example app under uvicorn, a separate
`backburner worker` on the same SQLite file, a real SMTP server; live progress produced by
the worker process reaches SSE and WebSocket subscribers of the web process; the web
server is SIGKILLed mid-job and the job still completes (S2, S18, S19); and
`backburner demo` starts everything and prints its URLs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from child_process import Proc, processes
from websockets.asyncio.client import connect

from examples.demo.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = ("completed", "failed", "cancelled")




@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as started:
        yield started


@pytest.fixture
def env(tmp_path: Path, sink: SmtpSink) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DEMO_DATA_DIR": str(tmp_path / "data"),
        "DEMO_JOBS_URL": f"sqlite:///{tmp_path}/jobs.db",
        "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port),
        "DEMO_SLOW_SECONDS": "0.1",
        "DEMO_STEP_SECONDS": "0.15",
        "DEMO_SMTP_FAIL_RATE": "0",
        "DEMO_EMBEDDED_WORKER": "0",
    }


async def start_web(procs: list[Proc], env: dict[str, str], log: Path) -> str:
    web = Proc([str(BIN / "python"), "-m", "uvicorn", "--factory",
                "examples.demo.web:create_app", "--host", "127.0.0.1", "--port", "0"], env, log)
    procs.append(web)
    found = await web.wait_for(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
    return found.group(1)


async def start_worker(procs: list[Proc], env: dict[str, str], log: Path) -> Proc:
    worker = Proc([str(BIN / "backburner"), "worker", "examples.demo.worker:create_jobs",
                   "--concurrency", "4"], env, log)
    procs.append(worker)
    await worker.wait_for(r"worker \S+ started")
    return worker


@asynccontextmanager
async def client(base: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=base, timeout=30) as c:
        yield c


async def wait_job(c: httpx2.AsyncClient, job_id: str, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body = (await c.get(f"/jobs/{job_id}")).json()
        if body["state"] in (states or TERMINAL):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def sse_updates(c: httpx2.AsyncClient, url: str) -> list[dict[str, Any]]:
    text = ""
    async with c.stream("GET", url) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_text():
            text += chunk
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


async def ws_updates(url: str) -> list[dict[str, Any]]:
    async with connect(url) as socket:
        messages = [json.loads(m) async for m in socket]
    return [m for m in messages if m["type"] == "job"]


def progress_values(updates: list[dict[str, Any]]) -> list[float]:
    return [u["progress"]["current"] for u in updates if u["progress"]]


async def test_a_separate_worker_runs_the_jobs_and_its_progress_reaches_the_web_process(
    tmp_path: Path, env: dict[str, str], sink: SmtpSink
) -> None:
    with processes() as procs:
        base = await start_web(procs, env, tmp_path / "web.log")
        worker = await start_worker(procs, env, tmp_path / "worker.log")
        async with client(base) as c:
            # S2: the endpoint returns a job id; the worker process runs it.
            sent = (await c.get("/send_email/far@example.com")).json()
            done = await wait_job(c, sent["task_id"])
            assert done["state"] == "completed", done
            assert done["worker_id"].split(":")[1] == str(worker.popen.pid)
            assert [m.to for m in sink.mails] == [("far@example.com",)]

            # S18: both kinds of subscribers, in the web process, see the worker's progress.
            started = (await c.post("/long-jobs", params={"steps": 8})).json()
            by_sse, by_ws = await asyncio.gather(
                sse_updates(c, started["events_url"]), ws_updates(started["websocket_url"]))
            for updates in (by_sse, by_ws):
                assert updates[-1]["state"] == "completed", updates
                values = progress_values(updates)
                assert values == sorted(values) and values[-1] == 8
                assert len(set(values)) >= 3  # live steps, not only the end
        # S2: the result is stored: readable after the worker stopped, and after a restart
        # of the web server.
        assert worker.stop() == 0
        procs[0].stop()
        base = await start_web(procs, env, tmp_path / "web2.log")
        async with client(base) as c:
            again = (await c.get(f"/jobs/{sent['task_id']}")).json()
            assert again["result"] == "Email sent to far@example.com"


async def test_s2_the_readme_recipe_delivers_to_the_demo_sink_without_smtp_settings(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The README's separate-worker recipe as written: no SMTP_* anywhere. The web process
    runs the demo's SMTP sink and records its address in the data directory; the worker,
    another process, reads it there and delivers; `/mails` shows the mail."""
    plain = dict(env)  # DEMO_DATA_DIR (apart from other tests), DEMO_EMBEDDED_WORKER=0
    for name in ("SMTP_HOST", "SMTP_PORT", "DEMO_JOBS_URL"):
        del plain[name]
    recorded = tmp_path / "data" / "smtp-sink.json"
    with processes() as procs:
        base = await start_web(procs, plain, tmp_path / "web.log")
        assert recorded.exists()
        worker = await start_worker(procs, plain, tmp_path / "worker.log")
        async with client(base) as c:
            assert "No mails yet" in (await c.get("/mails")).text
            sent = (await c.get("/send_email/far@example.com")).json()
            await c.post("/register", json={"email": "ada@example.com", "username": "ada"})
            done = await wait_job(c, sent["task_id"])
            assert done["state"] == "completed", done
            assert done["worker_id"].split(":")[1] == str(worker.popen.pid)
            (welcome,) = (await c.get("/jobs", params={"task": "demo.send_welcome"})).json()[
                "jobs"]
            welcome = await wait_job(c, welcome["id"])
            assert welcome["state"] == "completed", welcome
            mails = (await c.get("/mails.json")).json()
            assert sorted(m["to"][0] for m in mails) == ["ada@example.com", "far@example.com"]
            page = (await c.get("/mails")).text
            assert "far@example.com" in page and "Welcome ada" in page
        assert worker.stop() == 0
        procs[0].stop()
        # The web process took its address with it: no worker sends to a dead port.
        assert not recorded.exists()


async def test_s19_the_web_server_is_killed_mid_job_and_the_job_still_completes(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with processes() as procs:
        base = await start_web(procs, env, tmp_path / "web.log")
        await start_worker(procs, env, tmp_path / "worker.log")
        async with client(base) as c:
            job_id = (await c.post("/long-jobs", params={"steps": 12})).json()["id"]
            while not ((await c.get(f"/jobs/{job_id}")).json()["progress"] or {}).get("current"):
                await asyncio.sleep(0.05)
        procs[0].stop(signal.SIGKILL)
        base = await start_web(procs, env, tmp_path / "web2.log")
        async with client(base) as c:
            updates = await sse_updates(c, f"/jobs/{job_id}/events")
        assert updates[-1]["state"] == "completed" and updates[-1]["result"] == {"steps": 12}


async def test_s19_a_web_server_with_an_embedded_worker_is_killed_mid_job(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The in-process case, where FastAPI's BackgroundTasks loses the work: the job's lease
    runs out after the kill, and the restarted server runs it again."""
    embedded = {**env, "DEMO_EMBEDDED_WORKER": "1", "DEMO_WORKER_LEASE": "1.5"}
    with processes() as procs:
        base = await start_web(procs, embedded, tmp_path / "web.log")
        async with client(base) as c:
            job_id = (await c.post("/long-jobs", params={"steps": 20})).json()["id"]
            while ((await c.get(f"/jobs/{job_id}")).json()["progress"] or {}).get(
                    "current", 0) < 2:
                await asyncio.sleep(0.05)
        procs[0].stop(signal.SIGKILL)
        base = await start_web(procs, embedded, tmp_path / "web2.log")
        async with client(base) as c:
            done = await wait_job(c, job_id)
            assert done["state"] == "completed" and done["result"] == {"steps": 20}
            assert done["attempt"] == 2  # the killed attempt, then the rescued one
            updates = await ws_updates(f"{base.replace('http', 'ws')}/jobs/{job_id}/ws")
            assert [u["state"] for u in updates] == ["completed"]


async def test_backburner_demo_starts_everything_and_prints_the_urls(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_SLOW_SECONDS": "0.1", "DEMO_STEP_SECONDS": "0.05",
           "DEMO_SMTP_FAIL_RATE": "0"}
    for name in ("SMTP_HOST", "DEMO_JOBS_URL", "DEMO_DATA_DIR"):
        env.pop(name, None)
    with processes() as procs:
        demo = Proc([str(BIN / "backburner"), "demo", "--port", "0", "--data-dir",
                     str(tmp_path / "demo")], env, tmp_path / "demo.log")
        procs.append(demo)
        await demo.wait_for(r"Stop with Ctrl-C")
        printed = re.findall(r"^  ([a-zA-Z ]+):\s+(http://\S+)", demo.text(), re.MULTILINE)
        urls = dict(printed)
        # The landing page first: the one a newcomer opens; it links to the others.
        assert printed[0][0] == "open this first" and printed[0][1].endswith("/demo")
        assert set(urls) == {"open this first", "progress page", "dashboard",
                             "received mails", "API docs", "metrics"}
        base = urls["open this first"].removesuffix("/demo")
        async with client(base) as c:
            landing = await c.get(urls["open this first"])
            assert landing.headers["content-type"].startswith("text/html")
            for page in ("/progress", "/dashboard/", "/mails", "/docs"):
                assert f'href="{page}"' in landing.text
            assert (await c.get(urls["API docs"])).status_code == 200
            assert 'id="bar-ws"' in (await c.get(urls["progress page"])).text
            assert "Content-Security-Policy" in (await c.get(urls["dashboard"])).headers
            assert "backburner_jobs" in (await c.get(urls["metrics"])).text
            assert "No mails yet" in (await c.get(urls["received mails"])).text
            # Opening what it prints starts nothing (GET / would: S16), periodic jobs aside.
            listed = (await c.get("/jobs")).json()["jobs"]
            assert {j["task"] for j in listed} <= {"demo.heartbeat", "demo.daily_report"}
            # The printed worker command, run as printed, is one more worker of this demo.
            command = re.search(r"more workers:\s+(.+)$", demo.text(), re.MULTILINE)
            assert command is not None
            assert "DEMO_DATA_DIR=" + str(tmp_path / "demo") in command.group(1)
            extra = Proc(["bash", "-c", f"exec env {command.group(1)}"], env,
                         tmp_path / "extra-worker.log")
            procs.append(extra)
            await extra.wait_for(r"worker \S+ started")
            workers = (await c.get("/monitor")).json()["workers"]
            assert str(extra.popen.pid) in {str(w["pid"]) for w in workers}
            await c.post("/register", json={"email": "new@example.com", "username": "new"})
            deadline = time.monotonic() + 30
            while not (await c.get("/mails.json")).json():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert "Welcome!" in (await c.get(urls["received mails"])).text
        assert (tmp_path / "demo" / "jobs.db").exists()
        assert demo.stop(signal.SIGINT) in (0, -signal.SIGINT, 130)
        assert "Traceback" not in demo.text()
