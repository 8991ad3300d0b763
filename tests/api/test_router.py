"""The job router over HTTP, with an embedded worker, against a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from backburner import Backburner, BackendUnavailableError, JobContext
from backburner.fastapi import accepted, backburner_lifespan, job_router


def build(url: str, *, auth: bool = False) -> tuple[FastAPI, Backburner]:
    jobs = Backburner(url, poll_interval=0.2)

    @jobs.task(name="count_to", retries=0)
    async def count_to(n: int, ctx: JobContext, pause: float = 0.05) -> dict[str, int]:
        """Counts to n, reporting progress."""
        for i in range(1, n + 1):
            await ctx.progress(i, total=n, message=f"step {i}")
            await asyncio.sleep(pause)
        return {"counted": n}

    @jobs.task(name="explode", retries=0)
    async def explode() -> None:
        raise RuntimeError("kaboom")

    @jobs.task(name="wait_forever")
    async def wait_forever() -> None:
        await asyncio.sleep(3600)

    async def token(x_token: Annotated[str | None, Header()] = None) -> None:
        if x_token != "secret":
            raise HTTPException(401, "missing or wrong X-Token")

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=4))
    api.include_router(
        job_router(jobs, expose=[count_to, explode, wait_forever],
                   dependencies=[Depends(token)] if auth else [], keepalive=0.5)
    )

    return api, jobs


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    api, _ = build(f"sqlite:///{tmp_path}/api.db")
    with TestClient(api) as c:
        yield c


def wait_state(client: TestClient, job_id: str, *states: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/jobs/{job_id}").json()
        if body["state"] in states:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_enqueue_returns_202_with_location_and_the_job_completes(client: TestClient) -> None:
    response = client.post("/tasks/count_to",
                           json={"n": 3, "pause": 0.01})
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["Location"] == body["status_url"]
    assert response.headers["Retry-After"] == "1"
    assert body["events_url"].endswith(f"/jobs/{body['id']}/events")
    assert body["websocket_url"].startswith("ws://")
    done = wait_state(client, body["id"], "completed")
    assert done["result"] == {"counted": 3}
    assert done["progress"]["percent"] == 100
    assert done["kwargs"] == {"n": 3, "pause": 0.01}


def test_bad_input_is_a_4xx_with_a_reason(client: TestClient) -> None:
    name = "count_to"
    wrong = client.post(f"/tasks/{name}", json={"n": "many"})
    assert wrong.status_code == 422 and "'n'" in wrong.json()["detail"]
    missing = client.post(f"/tasks/{name}", json={})
    assert missing.status_code == 422 and "n" in missing.json()["detail"]
    not_json = client.post(f"/tasks/{name}", content=b"{nope",
                           headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    not_object = client.post(f"/tasks/{name}", json=[1, 2])
    assert not_object.status_code == 422
    assert client.post("/tasks/not.exposed", json={}).status_code == 404
    assert client.get("/jobs/does-not-exist").status_code == 404
    assert client.get("/jobs", params={"state": "sleeping"}).status_code == 422
    assert client.get("/jobs", params={"cursor": "abc"}).status_code == 422
    assert client.get("/jobs", params={"limit": 0}).status_code == 422


def test_list_cancel_retry_delete(client: TestClient) -> None:
    explode = client.post("/tasks/explode", json={})
    failed = wait_state(client, explode.json()["id"], "failed")
    assert failed["errors"][0]["message"] == "kaboom" and failed["reason"] == "error"
    assert "RuntimeError" in failed["errors"][0]["traceback"]

    hang = client.post("/tasks/wait_forever", json={})
    hang_id = hang.json()["id"]
    wait_state(client, hang_id, "running")
    assert client.delete(f"/jobs/{hang_id}").status_code == 409
    assert client.post(f"/jobs/{hang_id}/retry").status_code == 409
    client.post(f"/jobs/{hang_id}/cancel")
    wait_state(client, hang_id, "cancelled")

    listing = client.get("/jobs", params={"state": ["failed", "cancelled"]}).json()
    assert {j["id"] for j in listing["jobs"]} == {failed["id"], hang_id}
    page = client.get("/jobs", params={"limit": 1}).json()
    assert len(page["jobs"]) == 1 and page["next_cursor"]
    rest = client.get("/jobs", params={"limit": 10, "cursor": page["next_cursor"]}).json()
    assert len(rest["jobs"]) == 1

    retried = client.post(f"/jobs/{failed['id']}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    wait_state(client, failed["id"], "failed")
    assert client.post(f"/jobs/{failed['id']}/cancel").status_code == 409
    assert client.delete(f"/jobs/{failed['id']}").status_code == 204
    assert client.get(f"/jobs/{failed['id']}").status_code == 404
    assert client.post("/jobs/nope/cancel").status_code == 404
    assert client.post("/jobs/nope/retry").status_code == 404
    assert client.delete("/jobs/nope").status_code == 404


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line
            and not line.startswith(":")
        )
        if lines.get("event") == "job":
            events.append((lines["id"], json.loads(lines["data"])))
    return events


def test_server_sent_events_stream_progress_until_the_end(client: TestClient) -> None:
    started = client.post("/tasks/count_to",
                          json={"n": 5, "pause": 0.05}).json()
    with client.stream("GET", started["events_url"]) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = _sse_events(text)
    states = [e["state"] for _, e in events]
    assert states[-1] == "completed" and events[-1][1]["result"] == {"counted": 5}
    currents = [e["progress"]["current"] for _, e in events if e["progress"]]
    assert currents == sorted(currents) and currents[-1] == 5
    # A reconnect with the last id gets nothing new: the job already ended.
    last_id = events[-1][0]
    with client.stream("GET", started["events_url"], headers={"Last-Event-ID": last_id}) as again:
        assert _sse_events("".join(again.iter_text())) == []
    assert client.get("/jobs/unknown/events").status_code == 404


def test_websocket_delivers_the_same_updates(client: TestClient) -> None:
    started = client.post("/tasks/count_to",
                          json={"n": 4, "pause": 0.05}).json()
    messages = []
    with client.websocket_connect(f"/jobs/{started['id']}/ws") as ws:
        while True:
            try:
                message = json.loads(ws.receive_text())
            except WebSocketDisconnect:
                break
            messages.append(message)
            if message.get("state") in ("completed", "failed", "cancelled"):
                break
    assert messages[-1]["state"] == "completed"
    assert messages[-1]["result"] == {"counted": 4}
    with (
        client.websocket_connect("/jobs/unknown/ws") as ws,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        ws.receive_text()
    assert info.value.code == 4404


def test_every_route_uses_the_apps_auth(tmp_path: Path) -> None:
    api, _ = build(f"sqlite:///{tmp_path}/auth.db", auth=True)
    with TestClient(api) as c:
        for method, path in [("GET", "/jobs"), ("GET", "/jobs/x"), ("POST", "/jobs/x/cancel"),
                             ("POST", "/jobs/x/retry"), ("DELETE", "/jobs/x"),
                             ("GET", "/jobs/x/events"),
                             ("POST", "/tasks/explode")]:
            assert c.request(method, path).status_code == 401, (method, path)
        with pytest.raises(WebSocketDisconnect), c.websocket_connect("/jobs/x/ws") as ws:
            ws.receive_text()
        ok = c.get("/jobs", headers={"X-Token": "secret"})
        assert ok.status_code == 200


def test_an_unreachable_store_is_a_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api, jobs = build(f"sqlite:///{tmp_path}/down.db")
    with TestClient(api) as c:
        async def down(*args: object, **kwargs: object) -> None:
            raise BackendUnavailableError("disk on fire")

        monkeypatch.setattr(jobs.backend, "get", down)
        monkeypatch.setattr(jobs.backend, "insert", down)
        response = c.get("/jobs/anything")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        enqueue = c.post("/tasks/explode", json={})
        assert enqueue.status_code == 503


def test_accepted_helper_for_own_endpoints(tmp_path: Path) -> None:
    jobs = Backburner(f"sqlite:///{tmp_path}/own.db")

    @jobs.task
    async def slow_report(month: str) -> str:
        return month

    api = FastAPI(lifespan=backburner_lifespan(jobs))
    api.include_router(job_router(jobs))

    @api.post("/reports/{month}", status_code=202)
    async def make_report(month: str, request: Request) -> object:
        return accepted(await slow_report.enqueue(month), request)

    with TestClient(api) as c:
        response = c.post("/reports/2026-11")
        assert response.status_code == 202
        job = wait_state(c, response.json()["id"], "completed")
        assert job["result"] == "2026-11"
        assert response.headers["Location"].endswith(f"/jobs/{job['id']}")


def test_an_idempotency_key_makes_a_repeat_return_the_same_job(client: TestClient) -> None:
    headers = {"Idempotency-Key": "order-42/attempt"}
    first = client.post("/tasks/count_to", json={"n": 2, "pause": 0.01}, headers=headers)
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    job_id = first.json()["id"]
    wait_state(client, job_id, "completed")
    # After the job ended too (a client retrying after a lost response): the same job.
    again = client.post("/tasks/count_to", json={"n": 2, "pause": 0.01}, headers=headers)
    assert again.status_code == 202 and again.json()["id"] == job_id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    other = client.post("/tasks/count_to", json={"n": 2},
                        headers={"Idempotency-Key": "another"})
    assert other.json()["id"] != job_id
    assert client.post("/tasks/count_to", json={"n": 2}).json()["id"] != job_id
    for bad in ("", "x" * 201, "with space", "caf\u00e9"):
        response = client.post("/tasks/count_to", json={"n": 1},
                               headers={"Idempotency-Key": bad.encode()})
        assert response.status_code == 400, bad
    schema = client.get("/openapi.json").json()
    (param,) = schema["paths"]["/tasks/count_to"]["post"]["parameters"]
    assert param["name"] == "Idempotency-Key" and param["in"] == "header"


def test_a_chain_shows_its_links(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/flow.db"

    async def seed() -> list[str]:
        _, jobs = build(url)
        async with jobs:
            chain = await jobs.chain(
                jobs.get_task("count_to").call(1, pause=0.01), jobs.get_task("explode").call()
            )
            return [j.id for j in chain.jobs]

    first, second = asyncio.run(seed())
    api, _ = build(url)
    with TestClient(api) as client:
        waiting = client.get(f"/jobs/{second}").json()
        assert waiting["flow_id"] == first and waiting["depends_on"] == [first]
        done = wait_state(client, first, "completed")
        assert done["dependents"] == [second] and done["depends_on"] == []
        failed = wait_state(client, second, "failed")
        assert failed["waiting_on"] == 0 and failed["flow_id"] == first
        flow = client.get(f"/flows/{first}").json()
        assert flow["kind"] == "chain" and flow["state"] == "failed"
        assert flow["failed"] == second and [j["id"] for j in flow["jobs"]] == [first, second]
        assert client.get(f"/flows/{second}").status_code == 404
        assert client.get("/flows/nope").status_code == 404
