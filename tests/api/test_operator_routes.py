"""Search, counts and bulk actions over HTTP, against a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backburner import Backburner
from backburner.fastapi import job_router


def tasks(jobs: Backburner) -> None:
    @jobs.task(name="charge", retries=0)
    async def charge(customer: str) -> str:
        if customer.startswith("bad"):
            raise ValueError(f"card of {customer} declined")
        return f"charged {customer}"


async def prepare(url: str) -> None:
    """Two failed charges, one completed, then two waiting (no worker runs them)."""
    jobs = Backburner(url)
    tasks(jobs)
    charge = jobs.get_task("charge")
    async with jobs:
        for customer in ("bad-ada", "bad-bob", "carol"):
            await charge.enqueue(customer=customer)
        await jobs.run_worker(burst=True, concurrency=1)
        await charge.enqueue(customer="dan")
        await charge.enqueue(customer="erin")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path}/ops.db"
    asyncio.run(prepare(url))
    jobs = Backburner(url)
    tasks(jobs)
    api = FastAPI()
    api.include_router(job_router(jobs))
    with TestClient(api) as c:
        yield c


def ids(client: TestClient, **params: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/jobs", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found += [j["id"] for j in body["jobs"]]
        if body["next_cursor"] is None:
            return found
        cursor = body["next_cursor"]


def test_search_time_filters_and_count(client: TestClient) -> None:
    assert len(ids(client, search="DECLINED")) == 2
    assert len(ids(client, search="carol")) == 1
    assert client.get("/jobs/count", params={"search": "bad-"}).json() == {"count": 2}
    assert client.get("/jobs/count", params={"state": "pending"}).json() == {"count": 2}
    assert client.get("/jobs/count", params={"created_after": 0}).json() == {"count": 5}
    assert client.get("/jobs/count", params={"created_before": 0}).json() == {"count": 0}
    counted = client.get("/jobs/count", params={"action": "retry"}).json()
    assert counted == {"count": 2}
    for bad in ({"created_after": "yesterday"}, {"created_before": "nan"},
                {"search": "x" * 201}, {"state": "sleeping"}):
        response = client.get("/jobs", params=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"]


def test_bulk_needs_confirmation_and_applies_where_valid(client: TestClient) -> None:
    unconfirmed = client.post("/jobs/bulk/retry", json={"task": "charge"})
    assert unconfirmed.status_code == 422 and "confirm" in unconfirmed.text
    assert client.post("/jobs/bulk/retry", json={"confirm": False}).status_code == 422
    assert client.post("/jobs/bulk/explode", json={"confirm": True}).status_code == 422
    assert client.post("/jobs/bulk/retry", json={"confirm": True, "oops": 1}).status_code == 422
    stale = client.post("/jobs/bulk/retry", json={"confirm": True, "expected_count": 3})
    assert stale.status_code == 409 and "2 jobs match now" in stale.json()["detail"]

    retried = client.post("/jobs/bulk/retry",
                          json={"confirm": True, "expected_count": 2, "search": "declined"})
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"action": "retry", "matched": 2, "changed": 2, "skipped": 0}
    assert client.get("/jobs/count", params={"state": "failed"}).json() == {"count": 0}

    cancelled = client.post("/jobs/bulk/cancel", json={"confirm": True, "limit": 3})
    assert cancelled.json()["changed"] == 3
    deleted = client.post("/jobs/bulk/delete",
                          json={"confirm": True, "states": ["completed", "pending"]})
    # Pending jobs are not deletable in bulk: only the completed one goes.
    assert deleted.json() == {"action": "delete", "matched": 1, "changed": 1, "skipped": 0}
    assert client.get("/jobs/count").json() == {"count": 4}


def test_failure_groups_and_retrying_one(client: TestClient) -> None:
    groups = client.get("/failures").json()
    assert sorted(g["sample_message"] for g in groups) == [
        "card of bad-ada declined", "card of bad-bob declined"]
    assert all(g["count"] == 1 and g["error_type"] == "ValueError" for g in groups)
    assert client.get("/failures", params={"scan": 0}).status_code == 422
    assert client.post("/failures/not-a-fingerprint/retry").status_code == 422
    retried = client.post(f"/failures/{groups[0]['fingerprint']}/retry")
    assert retried.status_code == 200 and retried.json() == {"retried": 1}
    assert len(client.get("/failures").json()) == 1
