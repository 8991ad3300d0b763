"""The schedule routes of the job router over HTTP, with an embedded worker (whose scheduler
enqueues the ticks), against a real SQLite file: listing (cron and interval, time zone,
description, next runs, last run), pause/resume seen by the store, trigger (202 + Location,
the job completes), 404 for unknown names, 4xx for bad input, the router's auth and write
role, and a 503 when the store is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from backburner import Backburner, BackendUnavailableError
from backburner.fastapi import backburner_lifespan, job_router, schedule_router

TOKENS = {"reader": "read", "writer": "write"}
WRITE_ROUTES = ["/schedules/{}/pause", "/schedules/{}/resume", "/schedules/{}/trigger"]


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

    # No catch-up: with the default 15-minute window a run between 09:00 and 09:15 Paris time
    # would enqueue today's tick, and "a tick that has not come has no last run" would fail.
    @jobs.periodic(cron="0 9 * * *", tz="Europe/Paris", name="morning-report",
                   kwargs={"who": "board"}, catch_up=timedelta(0))
    @jobs.task(name="report", retries=0)
    async def report(who: str) -> dict[str, str]:
        return {"report": f"for {who}"}

    @jobs.periodic(every=timedelta(seconds=1))
    @jobs.task(name="pulse", retries=0)
    async def pulse() -> str:
        return "beat"

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=4))
    api.include_router(job_router(
        jobs, dependencies=[Depends(role)] if auth else [],
        write_dependencies=[Depends(writer)] if auth else [], keepalive=0.5))
    return api, jobs


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    api, _ = build(f"sqlite:///{tmp_path}/schedules.db")
    with TestClient(api) as c:
        yield c


def by_name(client: TestClient, **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/schedules", params=params)
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["schedules"]}


def wait_job(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = client.get(f"/jobs/{job_id}").json()
        if body["state"] in ("completed", "failed", "cancelled"):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_lists_cron_and_interval_schedules(client: TestClient) -> None:
    schedules = by_name(client, runs=3)
    assert set(schedules) == {"morning-report", "pulse"}
    morning = schedules["morning-report"]
    assert morning["task"] == "report"
    assert morning["cron"] == "0 9 * * *" and morning["every"] is None
    assert morning["tz"] == "Europe/Paris"
    assert morning["description"] == "At 09:00 every day (Europe/Paris)"
    assert morning["paused"] is False
    runs = [datetime.fromisoformat(r) for r in morning["next_runs"]]
    assert len(runs) == 3 and runs == sorted(runs)
    assert all((r.hour, r.minute) == (9, 0) for r in runs)  # local time, with its offset
    assert {r.utcoffset() for r in runs} <= {timedelta(hours=1), timedelta(hours=2)}

    pulse = schedules["pulse"]
    assert pulse["every"] == 1.0 and pulse["cron"] is None and pulse["tz"] == "UTC"
    assert pulse["description"] == "every 1 second"
    assert len(pulse["next_runs"]) == 3

    single = client.get("/schedules/morning-report")
    assert single.status_code == 200
    assert {k: v for k, v in single.json().items() if k not in ("next_runs", "last_run")} == {
        k: v for k, v in morning.items() if k not in ("next_runs", "last_run")}


def test_last_run_is_the_job_of_the_latest_tick(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while (last := by_name(client)["pulse"]["last_run"]) is None:
        assert time.monotonic() < deadline, "the scheduler enqueued no tick"
        time.sleep(0.1)
    tick = datetime.fromisoformat(last["tick"])
    assert tick.microsecond == 0 and tick.utcoffset() == timedelta(0)
    job = wait_job(client, last["job_id"])
    assert job["task"] == "pulse" and job["result"] == "beat"
    ids = {j["id"] for j in client.get("/jobs", params={"task": "pulse"}).json()["jobs"]}
    assert last["job_id"] in ids
    # A cron schedule whose tick has not come has no last run.
    assert by_name(client)["morning-report"]["last_run"] is None


def test_pause_and_resume_are_kept_by_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pause.db"
    api, _ = build(url)
    with TestClient(api) as c:
        paused = c.post("/schedules/morning-report/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True and paused.json()["name"] == "morning-report"
        assert by_name(c)["morning-report"]["paused"] is True
        assert by_name(c)["pulse"]["paused"] is False
        assert c.post("/schedules/morning-report/pause").json()["paused"] is True  # idempotent
    # Another process on the same store sees it.
    other, _ = build(url)
    with TestClient(other) as c:
        assert by_name(c)["morning-report"]["paused"] is True
        resumed = c.post("/schedules/morning-report/resume")
        assert resumed.status_code == 200 and resumed.json()["paused"] is False
        assert by_name(c)["morning-report"]["paused"] is False


def test_trigger_answers_202_with_the_location_of_a_job_that_runs(client: TestClient) -> None:
    client.post("/schedules/morning-report/pause")  # paused or not, a trigger runs
    response = client.post("/schedules/morning-report/trigger")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["task"] == "report" and body["state"] == "pending"
    assert response.headers["Location"] == body["status_url"]
    assert body["status_url"].endswith(f"/jobs/{body['id']}")
    assert response.headers["Retry-After"] == "1"
    job = wait_job(client, body["id"])
    assert job["state"] == "completed"
    assert job["result"] == {"report": "for board"}
    assert job["kwargs"] == {"who": "board"}


def test_unknown_names_are_404_and_bad_input_a_4xx(client: TestClient) -> None:
    for name in ("nope", "morning-report.", "PULSE", "%00", "x" * 200):
        assert client.get(f"/schedules/{name}").status_code == 404, name
        for route in WRITE_ROUTES:
            response = client.post(route.format(name))
            assert response.status_code == 404, (route, name, response.text)
            assert "no schedule named" in response.json()["detail"]
    for route in ["/schedules/{}", *WRITE_ROUTES]:
        method = "GET" if route == "/schedules/{}" else "POST"
        assert client.request(method, route.format("x" * 201)).status_code == 422
    for runs in ("0", "101", "-1", "many", "1e9"):
        assert client.get("/schedules", params={"runs": runs}).status_code == 422, runs
    assert client.get("/schedules/pulse/pause").status_code == 405
    assert client.delete("/schedules/pulse").status_code == 405
    # Nothing was paused or enqueued by any of it.
    assert not any(s["paused"] for s in by_name(client).values())
    assert client.get("/jobs", params={"task": "report"}).json()["jobs"] == []


def test_the_routers_auth_and_write_role_apply(tmp_path: Path) -> None:
    api, _ = build(f"sqlite:///{tmp_path}/auth.db", auth=True)
    reader = {"Authorization": "Bearer reader"}
    writer = {"Authorization": "Bearer writer"}
    with TestClient(api) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            assert c.get("/schedules", headers=headers).status_code == 401
            assert c.get("/schedules/pulse", headers=headers).status_code == 401
            for route in WRITE_ROUTES:
                assert c.post(route.format("pulse"), headers=headers).status_code == 401
        assert c.get("/schedules", headers=reader).status_code == 200
        for route in WRITE_ROUTES:  # also for unknown names: 403 before anything is looked up
            for name in ("morning-report", "nope"):
                response = c.post(route.format(name), headers=reader)
                assert response.status_code == 403, (route, name, response.text)
        # A foreign browser origin cannot pause either, even with the write role.
        foreign = {**writer, "Origin": "http://evil.example"}
        assert c.post("/schedules/pulse/pause", headers=foreign).status_code == 403
        listed = {s["name"]: s for s in c.get("/schedules", headers=reader).json()["schedules"]}
        assert not listed["pulse"]["paused"] and not listed["morning-report"]["paused"]
        assert c.get("/jobs", params={"task": "report"}, headers=reader).json()["jobs"] == []

        assert c.post("/schedules/pulse/pause", headers=writer).json()["paused"] is True
        assert c.post("/schedules/pulse/resume", headers=writer).json()["paused"] is False
        triggered = c.post("/schedules/morning-report/trigger", headers=writer)
        assert triggered.status_code == 202


def test_an_unreachable_store_is_a_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api, jobs = build(f"sqlite:///{tmp_path}/down.db")
    with TestClient(api) as c:
        async def down(*args: object, **kwargs: object) -> None:
            raise BackendUnavailableError("disk on fire")

        for method in ("schedule_states", "set_schedule_paused", "insert"):
            monkeypatch.setattr(jobs.backend, method, down)
        for method, path in [("GET", "/schedules"), ("GET", "/schedules/pulse"),
                             *[("POST", r.format("pulse")) for r in WRITE_ROUTES]]:
            response = c.request(method, path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Retry-After"] == "5"


def test_openapi_has_typed_models_and_stable_operation_ids(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = {op["operationId"]: (method, path)
                  for path, item in schema["paths"].items() for method, op in item.items()}
    assert {k: v for k, v in operations.items() if "schedule" in k} == {
        "backburner_list_schedules": ("get", "/schedules"),
        "backburner_get_schedule": ("get", "/schedules/{schedule}"),
        "backburner_pause_schedule": ("post", "/schedules/{schedule}/pause"),
        "backburner_resume_schedule": ("post", "/schedules/{schedule}/resume"),
        "backburner_trigger_schedule": ("post", "/schedules/{schedule}/trigger"),
    }
    trigger = schema["paths"]["/schedules/{schedule}/trigger"]["post"]
    assert trigger["responses"]["202"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/JobAccepted")
    assert {"403", "404", "503"} <= set(trigger["responses"])
    listing = schema["paths"]["/schedules"]["get"]["responses"]["200"]
    assert listing["content"]["application/json"]["schema"]["$ref"].endswith("/ScheduleListOut")
    fields = schema["components"]["schemas"]["ScheduleOut"]["properties"]
    assert {"name", "task", "cron", "every", "tz", "description", "paused", "next_runs",
            "last_run"} <= set(fields)


def test_schedule_router_on_its_own_under_a_prefix(tmp_path: Path) -> None:
    jobs = Backburner(f"sqlite:///{tmp_path}/own.db", poll_interval=0.2)

    @jobs.periodic(cron="*/5 * * * *", name="tidy")
    @jobs.task(name="tidy")
    async def tidy() -> str:
        return "tidied"

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=2))
    api.include_router(job_router(jobs))
    api.include_router(schedule_router(jobs, dependencies=[Depends(role)],
                                       write_dependencies=[Depends(writer)]), prefix="/admin")
    with TestClient(api) as c:
        assert c.get("/admin/schedules").status_code == 401
        assert c.post("/admin/schedules/tidy/trigger",
                      headers={"Authorization": "Bearer reader"}).status_code == 403
        listed = c.get("/admin/schedules", headers={"Authorization": "Bearer reader"}).json()
        assert listed["schedules"][0]["description"] == "Every fifth minute of every hour (UTC)"
        response = c.post("/admin/schedules/tidy/trigger",
                          headers={"Authorization": "Bearer writer"})
        assert response.status_code == 202
        assert response.headers["Location"].endswith(f"/jobs/{response.json()['id']}")
        assert wait_job(c, response.json()["id"])["result"] == "tidied"


def test_schedule_router_on_its_own_refuses_foreign_origins(tmp_path: Path) -> None:
    """The same origin check as job_router's writes, on pause, resume and trigger."""
    jobs = Backburner(f"sqlite:///{tmp_path}/origin.db")

    @jobs.periodic(cron="0 0 1 1 *", name="yearly")
    @jobs.task(name="yearly")
    async def yearly() -> None:
        return None

    api = FastAPI()
    api.include_router(job_router(jobs, name="jobs"), prefix="/j")
    api.include_router(schedule_router(jobs, name="jobs"))
    api.include_router(schedule_router(jobs, name="jobs", allowed_origins=["*"]),
                       prefix="/any")
    with TestClient(api) as c:
        for route in WRITE_ROUTES:
            path = route.format("yearly")
            refused = c.post(path, headers={"Origin": "http://evil.example"})
            assert refused.status_code == 403, (path, refused.text)
            assert c.post(f"/any{path}", headers={"Origin": "http://evil.example"}
                          ).status_code in (200, 202)
            assert c.post(path, headers={"Origin": "http://testserver"}).status_code in (200, 202)
        assert c.get("/schedules/yearly",
                     headers={"Origin": "http://evil.example"}).status_code == 200
