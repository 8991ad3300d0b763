"""R21 for the job router: with the app's auth as a router dependency every route (REST,
SSE, WebSocket) is a 401 without credentials; a read-only role watches jobs but cannot
change them (403, via `write_dependencies`); WebSockets and mutating requests from a
foreign browser `Origin` are refused (same origin by default, or an allow-list); and
`backburner demo`, which has no auth, listens on loopback only."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx2
import pytest
import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from fastapi.requests import HTTPConnection
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from backburner import Backburner
from backburner.cli import cli
from backburner.fastapi import backburner_lifespan, job_router

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKENS = {"reader-token": "read", "writer-token": "write"}
# (Pass copies to TestClient.websocket_connect: it adds its handshake headers to the dict.)
READER = {"Authorization": "Bearer reader-token"}
WRITER = {"Authorization": "Bearer writer-token"}
TERMINAL = ("completed", "failed", "cancelled")


async def role(connection: HTTPConnection) -> str:
    """The app's own auth: a bearer token, or a `session` cookie (what a browser's
    WebSocket and EventSource can send). Works for HTTP and WebSocket alike."""
    header = connection.headers.get("authorization", "")
    token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
    token = token or connection.cookies.get("session")
    if token not in TOKENS:
        raise HTTPException(401, "credentials required", headers={"WWW-Authenticate": "Bearer"})
    return TOKENS[token]


async def writer(who: Annotated[str, Depends(role)]) -> None:
    if who != "write":
        raise HTTPException(403, "read-only: this role cannot change jobs")


def build(url: str, **options: Any) -> tuple[FastAPI, Backburner]:
    jobs = Backburner(url, poll_interval=0.2)

    @jobs.task(name="hello", retries=0)
    async def hello(name: str) -> str:
        return f"hello {name}"

    @jobs.task(name="boom", retries=0)
    async def boom() -> None:
        raise RuntimeError("boom")

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=2))
    router = job_router(jobs, expose=[hello, boom], dependencies=[Depends(role)],
                        write_dependencies=[Depends(writer)], keepalive=0.5, **options)
    api.include_router(router)
    api.state.job_router = router
    return api, jobs


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    api, _ = build(f"sqlite:///{tmp_path}/auth.db")
    with TestClient(api) as c:
        yield c


def finished(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = client.get(f"/jobs/{job_id}", headers=READER).json()
        if body["state"] in TERMINAL:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


def enqueue(client: TestClient, task: str, **kwargs: Any) -> str:
    response = client.post(f"/tasks/{task}", json=kwargs, headers=WRITER)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def http_routes(client: TestClient) -> set[tuple[str, str]]:
    app: Any = client.app
    found = set()
    for route in app.state.job_router.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            # (The hidden ones answer the undocumented methods of a path with a 405.)
            found |= {(method, route.path) for method in route.methods}
        elif isinstance(route, APIWebSocketRoute):
            found.add(("WS", route.path))
    return found


MUTATING = [("POST", "/jobs/{job_id}/cancel"), ("POST", "/jobs/{job_id}/retry"),
            ("DELETE", "/jobs/{job_id}"), ("POST", "/jobs/bulk/{action}"),
            ("POST", "/failures/{fingerprint}/retry"),
            ("POST", "/tasks/hello"), ("POST", "/tasks/boom"),
            *[("POST", f"/schedules/{{schedule}}/{verb}") for verb in
              ("pause", "resume", "trigger")],
            *[("POST", f"/queues/{{queue}}/{verb}") for verb in ("pause", "resume")]]
READING = [("GET", "/jobs"), ("GET", "/jobs/count"), ("GET", "/failures"),
           ("GET", "/jobs/{job_id}"),
           ("GET", "/jobs/{job_id}/events"), ("GET", "/flows/{flow_id}"),
           ("GET", "/schedules"), ("GET", "/schedules/{schedule}"),
           ("GET", "/queues"), ("GET", "/queues/{queue}")]


def url(path: str, job_id: str) -> str:
    return path.format(job_id=job_id, schedule="nightly", action="retry", queue="mail",
                       flow_id=job_id, fingerprint="0123456789abcdef")


def test_every_route_is_a_401_without_credentials(client: TestClient) -> None:
    job_id = enqueue(client, "hello", name="ada")
    finished(client, job_id)
    # Every route of the router is listed here: a new route without auth fails this test.
    assert http_routes(client) == {*MUTATING, *READING, ("WS", "/jobs/{job_id}/ws")}
    for credentials in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        for method, path in [*MUTATING, *READING]:
            response = client.request(method, url(path, job_id), headers=credentials,
                                      json={"name": "x"} if path.startswith("/tasks") else None)
            assert response.status_code == 401, (method, path, credentials, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(
                f"/jobs/{job_id}/ws", headers={**credentials}):
            pass
        assert denied.value.status_code == 401
    # Nothing changed: the job is still there, and nothing new was enqueued.
    listing = client.get("/jobs", headers=READER).json()["jobs"]
    assert [j["id"] for j in listing] == [job_id]


def test_a_read_only_role_watches_but_cannot_change_anything(client: TestClient) -> None:
    done = enqueue(client, "hello", name="ada")
    failed = enqueue(client, "boom")
    assert finished(client, done)["state"] == "completed"
    assert finished(client, failed)["state"] == "failed"

    assert client.get("/jobs", headers=READER).status_code == 200
    assert client.get(f"/jobs/{done}", headers=READER).json()["result"] == "hello ada"
    with client.stream("GET", f"/jobs/{done}/events", headers=READER) as events:
        assert events.status_code == 200 and '"completed"' in "".join(events.iter_text())
    with client.websocket_connect(f"/jobs/{done}/ws", headers={**READER}) as ws:
        assert '"completed"' in ws.receive_text()
    # A browser's WebSocket cannot set headers: the same role from a cookie.
    client.cookies.set("session", "reader-token")
    try:
        with client.websocket_connect(f"/jobs/{done}/ws") as ws:
            assert '"completed"' in ws.receive_text()
    finally:
        client.cookies.clear()

    for method, path in MUTATING:
        response = client.request(method, url(path, failed), headers=READER,
                                  json={"name": "x"} if path.startswith("/tasks") else None)
        assert response.status_code == 403, (method, path, response.text)
    after = client.get(f"/jobs/{failed}", headers=READER).json()
    assert after["state"] == "failed" and after["attempt"] == 1  # not retried, not deleted
    assert len(client.get("/jobs", headers=READER).json()["jobs"]) == 2  # nothing enqueued

    # The write role may do all of it.
    assert client.post(f"/jobs/{failed}/retry", headers=WRITER).status_code == 200
    assert finished(client, failed)["attempt"] == 2
    assert client.delete(f"/jobs/{failed}", headers=WRITER).status_code == 204


def test_foreign_origins_are_refused_on_the_websocket_and_mutations(client: TestClient) -> None:
    job_id = enqueue(client, "hello", name="ada")
    finished(client, job_id)
    same = {**WRITER, "Origin": "http://testserver"}
    for foreign in ("http://evil.example", "http://testserver.evil.example", "null",
                    "https://testserver:8443", "file://"):
        headers = {**WRITER, "Origin": foreign}
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(
                f"/jobs/{job_id}/ws", headers={**headers}):
            pass
        assert denied.value.status_code == 403, foreign
        for method, path in MUTATING:
            response = client.request(method, url(path, job_id), headers=headers,
                                      json={"name": "x"} if path.startswith("/tasks") else None)
            assert response.status_code == 403, (foreign, method, path, response.text)
        # Reading stays possible: without CORS a foreign page cannot read the answer anyway.
        assert client.get(f"/jobs/{job_id}", headers=headers).status_code == 200
    assert client.get(f"/jobs/{job_id}", headers=READER).status_code == 200  # not deleted

    with client.websocket_connect(f"/jobs/{job_id}/ws", headers={**same}) as ws:
        assert '"completed"' in ws.receive_text()
    assert client.post("/tasks/hello", json={"name": "b"}, headers=same).status_code == 202
    assert client.delete(f"/jobs/{job_id}", headers=same).status_code == 204


def test_an_origin_allow_list_replaces_same_origin(tmp_path: Path) -> None:
    api, _ = build(f"sqlite:///{tmp_path}/allow.db", allowed_origins=["https://app.example"])
    with TestClient(api) as c:
        job_id = enqueue(c, "hello", name="ada")
        finished(c, job_id)
        with c.websocket_connect(f"/jobs/{job_id}/ws",
                                 headers={**READER, "Origin": "https://app.example/"}) as ws:
            assert '"completed"' in ws.receive_text()
        for refused in ("http://testserver", "https://other.example"):
            with pytest.raises(WebSocketDenialResponse), c.websocket_connect(
                    f"/jobs/{job_id}/ws", headers={**READER, "Origin": refused}):
                pass
            response = c.post("/tasks/hello", json={"name": "x"},
                              headers={**WRITER, "Origin": refused})
            assert response.status_code == 403
        assert c.post("/tasks/hello", json={"name": "x"},
                      headers={**WRITER, "Origin": "https://app.example"}).status_code == 202


@asynccontextmanager
async def serve(api: FastAPI) -> AsyncIterator[str]:
    """uvicorn on 127.0.0.1, a free port, in the test's event loop; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn stopped during startup"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def test_over_real_http_the_websocket_handshake_is_refused(tmp_path: Path) -> None:
    """Under uvicorn, as a browser sees it: 401 without credentials, 403 from a foreign
    origin, and the same origin with credentials gets the job's updates."""
    api, _ = build(f"sqlite:///{tmp_path}/real.db")
    async with serve(api) as base, httpx2.AsyncClient(base_url=base, timeout=30) as http:
        job_id = (await http.post("/tasks/hello", json={"name": "ada"},
                                  headers=WRITER)).json()["id"]
        deadline = time.monotonic() + 20
        while (await http.get(f"/jobs/{job_id}", headers=READER)).json()["state"] not in TERMINAL:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        url = f"{base.replace('http', 'ws', 1)}/jobs/{job_id}/ws"
        own = base.removeprefix("http://")
        with pytest.raises(InvalidStatus) as unauthenticated:
            async with connect(url, origin=f"http://{own}"):  # type: ignore[arg-type]
                pass
        assert unauthenticated.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as foreign:
            async with connect(url, origin="http://evil.example",  # type: ignore[arg-type]
                               additional_headers=READER):
                pass
        assert foreign.value.response.status_code == 403
        async with connect(url, origin=f"http://{own}",  # type: ignore[arg-type]
                           additional_headers=READER) as ws:
            assert '"completed"' in str(await asyncio.wait_for(ws.recv(), 10))


# --- No auth configured: `backburner demo` binds to loopback only. ---------------------

def test_backburner_demo_binds_loopback_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import examples.demo.run as demo_run

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(demo_run, "run_demo", lambda **kw: calls.append(kw))
    monkeypatch.chdir(REPO)
    assert CliRunner().invoke(cli, ["demo"]).exit_code == 0
    assert CliRunner().invoke(cli, ["demo", "--host", "::1", "--port", "0"]).exit_code == 0
    assert [c["host"] for c in calls] == ["127.0.0.1", "::1"]


def _listening_inodes_on(pid: int) -> dict[int, str]:
    """inode -> local address of every TCP socket `pid` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with_target = os.readlink(fd) if fd.is_symlink() else ""
        found = re.fullmatch(r"socket:\[(\d+)\]", with_target)
        if found:
            inodes.add(int(found.group(1)))
    listening = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in inodes:  # 0A: LISTEN
                listening[int(fields[9])] = fields[1]
    return listening


def _is_loopback(hex_address: str) -> bool:
    address = hex_address.split(":")[0]
    if len(address) == 8:  # IPv4, little-endian: 127.x.y.z ends in 7F
        return address.upper().endswith("7F")
    return address.upper() == "00000000000000000000000001000000"  # ::1


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_the_running_demo_listens_on_loopback_only(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_SMTP_FAIL_RATE": "0"}
    for name in ("SMTP_HOST", "DEMO_JOBS_URL", "DEMO_DATA_DIR"):
        env.pop(name, None)
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([str(BIN / "backburner"), "demo", "--port", "0", "--data-dir",
                                 str(tmp_path / "demo")], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "received mails:" not in log.read_text(errors="replace"):
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert re.search(r"Uvicorn running on http://127\.0\.0\.1:\d+", log.read_text())
        listening = _listening_inodes_on(demo.pid)
        assert len(listening) >= 2, listening  # the app and the local SMTP sink
        assert all(_is_loopback(a) for a in listening.values()), listening
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()


def test_the_demo_warns_when_told_to_listen_beyond_loopback() -> None:
    from examples.demo.run import exposure_warning

    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert exposure_warning(loopback) is None, loopback
    for exposed in ("0.0.0.0", "::", "", "192.0.2.10", "example.com"):
        warning = exposure_warning(exposed)
        assert warning is not None and "no authentication" in warning, exposed
