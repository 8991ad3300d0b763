"""One progress format on every surface: a job at 1 of 6 reads 16.67 percent over GET, Server-Sent
Events and the WebSocket alike (not 16.666666666666668), and the status schema still fits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backburner import Backburner, JobContext
from backburner.fastapi import backburner_lifespan, job_router
from backburner.fastapi.schemas import ProgressOut


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    jobs = Backburner(f"sqlite:///{tmp_path}/progress.db", poll_interval=0.2)

    @jobs.task(name="one_of_six", retries=0)
    async def one_of_six(ctx: JobContext) -> None:
        await ctx.progress(1, total=6, message="first of six")

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=1))
    api.include_router(job_router(jobs, expose=[one_of_six], keepalive=0.5))
    with TestClient(api) as c:
        yield c


def last_sse_event(text: str) -> dict[str, Any]:
    data = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    return dict(json.loads(data[-1]))


def test_every_surface_shows_the_rounded_percentage(client: TestClient) -> None:
    started = client.post("/tasks/one_of_six", json={}).json()
    with client.stream("GET", started["events_url"]) as response:
        sse_text = "".join(response.iter_text())
    with client.websocket_connect(f"/jobs/{started['id']}/ws") as ws:
        while True:
            ws_text = ws.receive_text()
            if json.loads(ws_text).get("state") == "completed":
                break
    status = client.get(f"/jobs/{started['id']}")
    assert status.status_code == 200, status.text
    for surface, final in (("sse", last_sse_event(sse_text)), ("ws", json.loads(ws_text)),
                           ("get", status.json())):
        assert final["state"] == "completed", surface
        assert final["progress"]["percent"] == 16.67, (surface, final)
        # The published schema still describes it (the same ProgressOut on every surface).
        assert ProgressOut.model_validate(final["progress"]).percent == 16.67
    for raw in (sse_text, ws_text, status.text):
        assert "16.67" in raw and "16.666" not in raw
    published = client.get("/openapi.json").json()["components"]["schemas"]["ProgressOut"]
    assert published["properties"]["percent"]["anyOf"][0] == {"type": "number"}
