"""The queue routes of the job router over HTTP, with an embedded worker, against a real
SQLite file: listing with counts, pause (jobs wait) and resume (they run), an unknown queue
is a 200 with zero counts, bad names are 4xx, writes need the write role, and a 503 when the
store is down."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from backburner import Backburner, BackendUnavailableError
from backburner.fastapi import backburner_lifespan, job_router, queue_router

TOKENS = {"reader": "read", "writer": "write"}


async def role(authorization: Annotated[str | None, Header()] = None) -> str:
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise HTTPException(401, "credentials required")
    return TOKENS[token]


async def writer(who: Annotated[str, Depends(role)]) -> None:
    if who != "write":
        raise HTTPException(403, "read-only")


def build(url: str, *, auth: bool = False) -> tuple[FastAPI, Backburner]:
    jobs = Backburner(url, poll_interval=0.2)

    @jobs.task(name="send", queue="mail", retries=0)
    async def send(to: str) -> str:
        return f"sent to {to}"

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=2))
    api.include_router(job_router(
        jobs, expose=[send], dependencies=[Depends(role)] if auth else [],
        write_dependencies=[Depends(writer)] if auth else []))
    return api, jobs


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Backburner]]:
    api, jobs = build(f"sqlite:///{tmp_path}/queues.db")
    with TestClient(api) as c:
        yield c, jobs


@pytest.fixture
def client(served: tuple[TestClient, Backburner]) -> TestClient:
    return served[0]


def state_of(client: TestClient, job_id: str) -> str:
    return str(client.get(f"/jobs/{job_id}").json()["state"])


def wait_state(client: TestClient, job_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 20
    while state_of(client, job_id) != wanted:
        assert time.monotonic() < deadline, state_of(client, job_id)
        time.sleep(0.02)


def burst_drain(client: TestClient, jobs: Backburner) -> None:
    """Run a burst worker on the served app's event loop (where its store was opened): it
    returns only after two claims in a row, both started after this call, came back empty,
    i.e. once nothing it serves is claimable any more."""
    assert client.portal is not None
    client.portal.call(functools.partial(jobs.run_worker, burst=True, handle_signals=False))


def test_pause_list_resume(served: tuple[TestClient, Backburner]) -> None:
    """A paused queue keeps its job pending. No sleep decides that: a burst worker serving
    the queue drains until its claims, made after the enqueue, come back empty. If the pause
    did not hold, the burst worker (or the embedded one) would claim and run the job, and it
    would not be pending."""
    client, jobs = served
    assert client.get("/queues").json() == {"queues": []}
    paused = client.post("/queues/mail/pause")
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["name"] == "mail" and body["paused"] is True and body["total"] == 0
    assert body["changed_at"] is not None
    assert set(body["counts"]) == {"pending", "scheduled", "running", "completed", "failed",
                                   "cancelled"}

    job_id = client.post("/tasks/send", json={"to": "ada"}).json()["id"]
    burst_drain(client, jobs)
    assert state_of(client, job_id) == "pending"
    [listed] = client.get("/queues").json()["queues"]
    assert listed["name"] == "mail" and listed["paused"] and listed["counts"]["pending"] == 1

    resumed = client.post("/queues/mail/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    wait_state(client, job_id, "completed")
    one = client.get("/queues/mail").json()
    assert one["counts"]["completed"] == 1 and one["total"] == 1 and not one["paused"]


def test_unknown_and_bad_names(client: TestClient) -> None:
    unknown = client.get("/queues/nobody")
    assert unknown.status_code == 200
    assert unknown.json()["total"] == 0 and unknown.json()["paused"] is False
    assert unknown.json()["changed_at"] is None
    assert client.get("/queues").json() == {"queues": []}  # reading creates nothing
    assert client.get("/queues/" + "x" * 201).status_code == 422
    for path in ("/queues/nul%00/pause", "/queues/nul%00"):
        response = (client.post if path.endswith("pause") else client.get)(path)
        assert response.status_code == 404, response.text
        assert "queue name" in response.json()["detail"]


def test_writes_need_the_write_role(tmp_path: Path) -> None:
    api, _ = build(f"sqlite:///{tmp_path}/auth.db", auth=True)
    with TestClient(api) as c:
        for path in ("/queues", "/queues/mail"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers={"Authorization": "Bearer reader"}).status_code == 200
        for verb in ("pause", "resume"):
            assert c.post(f"/queues/mail/{verb}").status_code == 401
            reader = c.post(f"/queues/mail/{verb}", headers={"Authorization": "Bearer reader"})
            assert reader.status_code == 403
            done = c.post(f"/queues/mail/{verb}", headers={"Authorization": "Bearer writer"})
            assert done.status_code == 200


def test_queue_router_on_its_own(tmp_path: Path) -> None:
    jobs = Backburner(f"sqlite:///{tmp_path}/alone.db")
    api = FastAPI()
    api.include_router(queue_router(jobs), prefix="/admin")
    with TestClient(api) as c:
        assert c.post("/admin/queues/q/pause").json()["paused"] is True
        assert [q["name"] for q in c.get("/admin/queues").json()["queues"]] == ["q"]


def test_an_unreachable_store_is_a_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api, jobs = build(f"sqlite:///{tmp_path}/down.db")
    with TestClient(api) as c:
        async def down(*args: object, **kwargs: object) -> Any:
            raise BackendUnavailableError("disk on fire")

        monkeypatch.setattr(jobs.backend, "counts", down)
        monkeypatch.setattr(jobs.backend, "set_queue_paused", down)
        for response in (c.get("/queues"), c.get("/queues/mail"),
                         c.post("/queues/mail/pause"), c.post("/queues/mail/resume")):
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"


def test_queue_router_on_its_own_refuses_foreign_origins(tmp_path: Path) -> None:
    """The same origin check as job_router's writes: a cross-origin pause is a 403 (it was
    a 200 when queue_router was used on its own), reading stays open, `allowed_origins`
    replaces the same-origin rule."""
    jobs = Backburner(f"sqlite:///{tmp_path}/origin.db")
    api = FastAPI()
    api.include_router(queue_router(jobs))
    api.include_router(queue_router(jobs, allowed_origins=["https://app.example"]),
                       prefix="/listed")
    with TestClient(api) as c:
        for verb in ("pause", "resume"):
            for foreign in ("http://evil.example", "null", "http://testserver.evil"):
                refused = c.post(f"/queues/mail/{verb}", headers={"Origin": foreign})
                assert refused.status_code == 403, (verb, foreign, refused.text)
            assert c.post(f"/queues/mail/{verb}",
                          headers={"Origin": "http://testserver"}).status_code == 200
            assert c.post(f"/queues/mail/{verb}").status_code == 200  # no Origin: no browser
            assert c.post(f"/listed/queues/mail/{verb}",
                          headers={"Origin": "http://testserver"}).status_code == 403
            assert c.post(f"/listed/queues/mail/{verb}",
                          headers={"Origin": "https://app.example"}).status_code == 200
        assert c.get("/queues/mail", headers={"Origin": "http://evil.example"}).json()[
            "paused"] is False
