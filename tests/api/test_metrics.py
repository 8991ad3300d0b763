"""`GET /metrics` over HTTP, against a real SQLite file and an embedded worker: transitions
counted at the instrumentation point, queue depth and workers read from the store, and two
apps in one process never sharing counters. (The 503 while the store is down: R7's API
test.)"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backburner import Backburner
from backburner.fastapi import backburner_lifespan, job_router, metrics_router


def build(url: str) -> tuple[FastAPI, Backburner]:
    jobs = Backburner(url, poll_interval=0.2)

    @jobs.task(name="ok", retries=0)
    async def ok() -> str:
        return "fine"

    @jobs.task(name="boom", retries=0, queue="risky")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=2))
    api.include_router(job_router(jobs, expose=[ok, boom]))
    api.include_router(metrics_router(jobs))
    return api, jobs


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_terminal(client: TestClient, job_id: str) -> None:
    deadline = time.monotonic() + 15
    while client.get(f"/jobs/{job_id}").json()["state"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_metrics_count_transitions_and_read_depth_from_the_store(tmp_path: Path) -> None:
    api, _ = build(f"sqlite:///{tmp_path}/m.db")
    with TestClient(api) as client:
        for _ in range(3):
            wait_terminal(client, client.post("/tasks/ok", json={}).json()["id"])
        wait_terminal(client, client.post("/tasks/boom", json={}).json()["id"])
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        got = samples(response.text)
    done = ("backburner_job_transitions_total",
            (("queue", "default"), ("state", "completed"), ("task", "ok")))
    failed = ("backburner_job_transitions_total",
              (("queue", "risky"), ("state", "failed"), ("task", "boom")))
    assert got[done] == 3 and got[failed] == 1
    assert got[("backburner_jobs", (("queue", "default"), ("state", "completed")))] == 3
    assert got[("backburner_jobs", (("queue", "risky"), ("state", "failed")))] == 1
    assert got[("backburner_jobs", (("queue", "risky"), ("state", "pending")))] == 0
    assert got[("backburner_workers", ())] == 1


def test_two_apps_keep_their_own_counters(tmp_path: Path) -> None:
    first, _ = build(f"sqlite:///{tmp_path}/a.db")
    second, _ = build(f"sqlite:///{tmp_path}/b.db")
    with TestClient(first) as a, TestClient(second) as b:
        wait_terminal(a, a.post("/tasks/ok", json={}).json()["id"])
        got_b = samples(b.get("/metrics").text)
    assert not any(name == "backburner_job_transitions_total" for name, _ in got_b)


def test_run_and_wait_histograms_count_every_attempt(tmp_path: Path) -> None:
    api, _ = build(f"sqlite:///{tmp_path}/h.db")
    with TestClient(api) as client:
        for _ in range(3):
            wait_terminal(client, client.post("/tasks/ok", json={}).json()["id"])
        wait_terminal(client, client.post("/tasks/boom", json={}).json()["id"])
        got = samples(client.get("/metrics").text)
    ok = (("queue", "default"), ("task", "ok"))
    boom = (("queue", "risky"), ("task", "boom"))
    for name in ("backburner_job_run_seconds", "backburner_job_wait_seconds"):
        assert got[(f"{name}_count", ok)] == 3, name
        assert got[(f"{name}_count", boom)] == 1, name
        assert got[(f"{name}_bucket", tuple(sorted((*ok, ("le", "+Inf")))))] == 3
        assert got[(f"{name}_sum", ok)] >= 0
