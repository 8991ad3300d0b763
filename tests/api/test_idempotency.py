"""`Idempotency-Key` on `POST /tasks/{name}`, as the IETF draft
(draft-ietf-httpapi-idempotency-key-header) asks: a repeat with the same arguments answers
the first job (202, `Idempotent-Replayed: true`); the key reused with other arguments is a
422 with the reason (it answered the first job before); a request whose key is still in
flight is a 409. Real uvicorn, real concurrent requests, a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI

from backburner import Backburner
from backburner.fastapi import backburner_lifespan, job_router
from tests.api.servers import serving


def build(url: str) -> FastAPI:
    jobs = Backburner(url, poll_interval=0.2)

    @jobs.task(name="hello", retries=0)
    async def hello(name: str, times: int = 1) -> str:
        return f"hello {name}" * times

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=2))
    api.include_router(job_router(jobs, expose=[hello]))
    return api


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    with serving(build(f"sqlite:///{tmp_path}/idem.db")) as url:
        yield url


async def test_a_key_reused_with_other_arguments_is_a_422(base: str) -> None:
    key = {"Idempotency-Key": "order-7"}
    async with httpx2.AsyncClient(base_url=base, timeout=30) as client:
        first = await client.post("/tasks/hello", json={"name": "ada"}, headers=key)
        assert first.status_code == 202 and "idempotent-replayed" not in first.headers
        job_id = first.json()["id"]
        # The same payload (key order aside): the same job, replayed.
        for body in ({"name": "ada"}, {"name": "ada"}):
            again = await client.post("/tasks/hello", json=body, headers=key)
            assert again.status_code == 202, again.text
            assert again.json()["id"] == job_id
            assert again.headers["idempotent-replayed"] == "true"
        # Another payload, even one that spells out a default: refused.
        for body in ({"name": "bob"}, {"name": "ada", "times": 2}, {"name": "ada", "times": 1}):
            other = await client.post("/tasks/hello", json=body, headers=key)
            assert other.status_code == 422, other.text
            assert "other arguments" in other.json()["detail"]
            assert job_id in other.json()["detail"]
        listed = (await client.get("/jobs", params={"task": "hello"})).json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]  # the refused requests stored nothing


async def test_a_key_still_in_flight_is_a_409(base: str) -> None:
    key = {"Idempotency-Key": "slow-1", "Content-Type": "application/json"}
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"name": '
        await release.wait()  # the first request stays in flight until the test says so
        yield b'"ada"}'

    async with httpx2.AsyncClient(base_url=base, timeout=30) as client:
        first = asyncio.create_task(client.post("/tasks/hello", content=slow_body(),
                                                headers=key))
        # Probe with a body that can never be stored: until the first request is in flight
        # the probe is a 400 (not JSON) and changes nothing; once it is, a 409.
        deadline = time.monotonic() + 20
        while True:
            probe = await client.post("/tasks/hello", content=b"not json", headers=key)
            if probe.status_code == 409:
                break
            assert probe.status_code == 400, probe.text
            assert time.monotonic() < deadline, "the first request never arrived"
            await asyncio.sleep(0.01)
        assert "still being processed" in probe.json()["detail"]
        for body in ({"name": "ada"}, {"name": "bob"}):  # same or other arguments alike
            concurrent = await client.post("/tasks/hello", json=body, headers=key)
            assert concurrent.status_code == 409, concurrent.text
        assert not first.done()
        release.set()
        answered = await first
        assert answered.status_code == 202, answered.text
        # Finished: the key answers the first job now.
        again = await client.post("/tasks/hello", json={"name": "ada"}, headers=key)
        assert again.status_code == 202 and again.json()["id"] == answered.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        # Another key was never blocked by this one.
        other = await client.post("/tasks/hello", json={"name": "ada"},
                                  headers={"Idempotency-Key": "slow-2"})
        assert other.status_code == 202 and other.json()["id"] != answered.json()["id"]


async def test_arguments_are_validated_strictly(base: str) -> None:
    """What the published schema refuses, the route refuses: no boolean for an integer,
    no string of digits, no property the task does not take."""
    async with httpx2.AsyncClient(base_url=base, timeout=30) as client:
        for body in ({"name": "a", "times": False}, {"name": "a", "times": "3"},
                     {"name": 5}, {"name": "a", "unknown": 1}, {"name": "a", "times": 1.5}):
            response = await client.post("/tasks/hello", json=body)
            assert response.status_code == 422, (body, response.text)
        schema = (await client.get("/openapi.json")).json()
        body_schema = schema["paths"]["/tasks/hello"]["post"]["requestBody"]["content"][
            "application/json"]["schema"]
        assert body_schema["additionalProperties"] is False
        assert (await client.post("/tasks/hello", json={"name": "a", "times": 2})
                ).status_code == 202
