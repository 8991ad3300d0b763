"""S18, the page itself: its script, run by Node against the live app with a minimal DOM,
starts a job from #start and fills both bars (WebSocket and SSE) to 100 %. (A real browser
test with Playwright is for tests/browser.)"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from demo_harness import Demo, running_demo

from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parents[1] / "examples" / "demo" / "static" / "progress.js"


async def test_s18_the_page_script_fills_both_bars(settings: Settings, sink: SmtpSink) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page script is checked by tests/browser only")
    async with running_demo(replace(settings, step_seconds=0.1), sink) as demo:
        await drive(node, demo)


async def drive(node: str, demo: Demo) -> None:
    process = await asyncio.create_subprocess_exec(
        node, "--no-warnings", "--experimental-websocket", "--experimental-eventsource",
        str(HERE / "progress_page_driver.js"), demo.base, str(SCRIPT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["error"] == ""
    for channel in ("ws", "sse"):
        assert result[channel] == {"pct": "100%", "bar": 100, "state": "completed"}, result
        seen = [int(p.rstrip("%")) for p in result["history"][channel]]
        assert seen == sorted(seen[:1]) + sorted(seen[1:])  # reset to 0, then only up
    job = await demo.wait(result["jobId"])
    assert job["state"] == "completed" and job["result"] == {"steps": 5}
