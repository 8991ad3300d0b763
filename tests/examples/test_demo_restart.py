"""S19 (in one process; tests/acceptance does it with SIGKILL): a server restarted in the
middle of a job does not lose it, where in-process BackgroundTasks would."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from demo_harness import running_demo

from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink


async def test_s19_a_job_interrupted_by_a_restart_completes_afterwards(
    settings: Settings, sink: SmtpSink
) -> None:
    slow = replace(settings, step_seconds=0.05)
    # A short grace period: the stopping server hands the running job back at once.
    async with running_demo(slow, sink, grace=0.1) as web:
        job_id = (await web.client.post("/long-jobs", params={"steps": 40})).json()["id"]
        while True:
            job = await web.job(job_id)
            if job["progress"] and job["progress"]["current"] >= 3:
                break
            await asyncio.sleep(0.02)
    async with running_demo(slow, sink, worker=False) as web:
        between = await web.job(job_id)
        assert between["state"] == "pending"  # released, not lost, not finished
        assert between["progress"]["current"] < 40
        # The seed's tracking view says the same.
        info = (await web.client.get(f"/tasks/{job_id}")).json()
        assert info["status"] == "pending"
    async with running_demo(slow, sink) as web:
        done = await web.wait(job_id)
    assert done["state"] == "completed" and done["result"] == {"steps": 40}
    assert done["attempt"] == 2
