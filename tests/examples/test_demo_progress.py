"""S18: the front end learns the job's state: by polling, or pushed live over WebSocket and
Server-Sent Events, as the progress page does; reconnecting resumes; the terminal state is
always delivered."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from demo_harness import Demo, running_demo
from websockets.asyncio.client import connect

from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink

PAGE_IDS = ("start", "steps", "job-id", "bar-ws", "bar-sse", "pct-ws", "pct-sse", "state-ws",
            "state-sse", "error")


async def test_s18_the_progress_page_is_static_and_csp_friendly(demo: Demo) -> None:
    page = await demo.client.get("/progress")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    html = page.text
    for element_id in PAGE_IDS:
        assert f'id="{element_id}"' in html, element_id
    # No inline script or handler: every <script> has a src, no on*= attributes.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert not re.search(r"\son[a-z]+=", html)
    script = await demo.client.get("/static/progress.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for needle in ("/long-jobs", "new WebSocket(", "new EventSource(", "bar-", "pct-"):
        assert needle in script.text
    assert (await demo.client.get("/static/demo.css")).status_code == 200
    landing = await demo.client.get("/demo")
    assert "/progress" in landing.text and "/mails" in landing.text


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if fields.get("event") == "job":
            events.append((fields["id"], json.loads(fields["data"])))
    return events


async def read_sse(demo: Demo, url: str, *, stop_after: int | None = None,
                   last_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    buffer = ""
    async with demo.client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_text():
            buffer += chunk
            if stop_after is not None and len(sse_events(buffer)) >= stop_after:
                break
    return sse_events(buffer)


def percents(updates: list[dict[str, Any]]) -> list[float]:
    return [u["progress"]["percent"] for u in updates if u["progress"]]


async def test_s18_polling_and_sse_follow_the_job_to_its_end(demo: Demo) -> None:
    started = (await demo.client.post("/long-jobs", params={"steps": 5})).json()
    polled = (await demo.client.get(started["status_url"])).json()
    assert polled["state"] in ("pending", "running", "completed")
    events = await read_sse(demo, started["events_url"])
    updates = [u for _, u in events]
    assert updates[-1]["state"] == "completed" and updates[-1]["result"] == {"steps": 5}
    assert percents(updates) == sorted(percents(updates)) and percents(updates)[-1] == 100


async def test_s18_websocket_follows_the_job_to_its_end(demo: Demo) -> None:
    started = (await demo.client.post("/long-jobs", params={"steps": 5})).json()
    assert started["websocket_url"].startswith("ws://")
    updates = []
    async with connect(started["websocket_url"]) as socket:
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "job":
                updates.append(message)
    assert updates[-1]["state"] == "completed" and updates[-1]["result"] == {"steps": 5}
    assert percents(updates) == sorted(percents(updates)) and percents(updates)[-1] == 100
    assert socket.close_code == 1000


async def test_s18_reconnecting_resumes_on_both_channels(
    settings: Settings, sink: SmtpSink
) -> None:
    slower = replace(settings, step_seconds=0.1)
    async with running_demo(slower, sink) as demo:
        started = (await demo.client.post("/long-jobs", params={"steps": 10})).json()
        # SSE: read two events, drop the connection, come back with Last-Event-ID.
        first = await read_sse(demo, started["events_url"], stop_after=2)
        last_id, last_update = first[-1]
        rest = await read_sse(demo, started["events_url"], last_id=last_id)
        assert rest and rest[0][0] != last_id  # nothing already received is sent again
        assert rest[-1][1]["state"] == "completed"
        resumed = percents([last_update] + [u for _, u in rest])
        assert resumed == sorted(resumed)

        # WebSocket: the same, a new connection starts with the current state.
        again = (await demo.client.post("/long-jobs", params={"steps": 10})).json()
        async with connect(again["websocket_url"]) as socket:
            before = [json.loads(await socket.recv()) for _ in range(2)]
        async with connect(again["websocket_url"]) as socket:
            after = [json.loads(m) async for m in socket]
        jobs = [m for m in before + after if m["type"] == "job"]
        assert jobs[-1]["state"] == "completed"
        assert percents(jobs) == sorted(percents(jobs))

        # A job that ended long ago: the terminal state is still delivered at once.
        late = await read_sse(demo, again["events_url"])
        assert [u["state"] for _, u in late] == ["completed"]
        async with connect(again["websocket_url"]) as socket:
            assert [json.loads(m)["state"] async for m in socket] == ["completed"]
