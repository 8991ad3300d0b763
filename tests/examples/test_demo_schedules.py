"""S3, periodic jobs (Celery beat), over HTTP: the demo lists its daily report and its
heartbeat at `GET /schedules`; the daily report triggered over HTTP stores its report as
the job's result; and with three real `backburner worker` processes (three schedulers) on
one SQLite file, a 1 s heartbeat is enqueued exactly once per tick, none missed."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from child_process import Proc, processes
from demo_harness import Demo, running_demo

from examples.demo.settings import Settings, SettingsError
from examples.demo.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


async def schedules(demo: Demo) -> dict[str, dict[str, Any]]:
    response = await demo.client.get("/schedules")
    assert response.status_code == 200, response.text
    return {s["name"]: s for s in response.json()["schedules"]}


async def test_the_demo_lists_its_schedules_and_runs_a_triggered_report(demo: Demo) -> None:
    listed = await schedules(demo)
    assert set(listed) == {"daily-report", "heartbeat"}
    daily = listed["daily-report"]
    assert daily["task"] == "demo.daily_report" and daily["cron"] == "0 9 * * *"
    assert daily["tz"] == "Europe/Paris" and not daily["paused"]
    assert daily["description"] == "At 09:00 every day (Europe/Paris)"
    assert all(datetime.fromisoformat(r).strftime("%H:%M") == "09:00"
               for r in daily["next_runs"])
    beat = listed["heartbeat"]
    assert beat["every"] == 30.0 and beat["description"] == "every 30 seconds"

    # A registration for the report to count.
    registered = await demo.client.post(
        "/register", json={"email": "ada@example.com", "username": "ada"})
    assert registered.status_code == 200, registered.text
    await demo.wait_jobs("demo.send_welcome", 1)

    response = await demo.client.post("/schedules/daily-report/trigger")
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location.endswith(f"/jobs/{response.json()['id']}")
    job = await demo.wait(response.json()["id"])
    assert job["state"] == "completed", job
    report = job["result"]
    assert report["tz"] == "Europe/Paris" and report["tick"] is None  # by hand: no tick
    yesterday, today = report["yesterday"], report["today"]
    assert datetime.fromisoformat(today["day"]) - datetime.fromisoformat(yesterday["day"]) \
        == timedelta(days=1)
    # (Around midnight in Paris the registration may already count as yesterday's.)
    assert yesterday["registrations"] + today["registrations"] == 1
    assert today["by_task"].get("demo.send_welcome", 0) + \
        yesterday["by_task"].get("demo.send_welcome", 0) == 1
    assert yesterday["complete"] and today["complete"]

    assert (await demo.client.post("/schedules/nope/trigger")).status_code == 404
    assert (await demo.client.post("/schedules/nope/pause")).status_code == 404


async def test_the_heartbeat_ticks_in_the_demo(demo: Demo) -> None:
    # The embedded worker's scheduler enqueues the latest tick when it starts.
    (job,) = await demo.wait_jobs("demo.heartbeat", 1, "completed")
    tick = datetime.fromisoformat(job["result"]["tick"])
    assert tick.timestamp() % 30 == 0
    last = (await schedules(demo))["heartbeat"]["last_run"]
    assert last["job_id"] == job["id"] and datetime.fromisoformat(last["tick"]) == tick

    paused = await demo.client.post("/schedules/heartbeat/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert (await schedules(demo))["heartbeat"]["paused"] is True
    resumed = await demo.client.post("/schedules/heartbeat/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False


def test_schedule_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"DEMO_REPORT_TZ": "Asia/Tokyo", "DEMO_HEARTBEAT_SECONDS": "0"})
    assert settings.report_tz == "Asia/Tokyo" and settings.heartbeat_seconds == 0
    defaults = Settings.from_env({})
    assert defaults.report_tz == "Europe/Paris" and defaults.heartbeat_seconds == 30
    for name, value in [("DEMO_REPORT_TZ", "Mars/Olympus"), ("DEMO_REPORT_TZ", "../etc"),
                        ("DEMO_HEARTBEAT_SECONDS", "0.5"), ("DEMO_HEARTBEAT_SECONDS", "nan"),
                        ("DEMO_HEARTBEAT_SECONDS", "-3"), ("DEMO_HEARTBEAT_SECONDS", "x")]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value})


async def test_other_zone_and_no_heartbeat(settings: Settings, sink: SmtpSink) -> None:
    custom = replace(settings, report_tz="America/New_York", heartbeat_seconds=0)
    async with running_demo(custom, sink) as demo:
        listed = await schedules(demo)
        assert set(listed) == {"daily-report"}
        assert listed["daily-report"]["description"] == "At 09:00 every day (America/New_York)"




async def test_three_workers_enqueue_each_tick_exactly_once(
    settings: Settings, sink: SmtpSink, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEMO_DATA_DIR": str(settings.data_dir),
           "DEMO_JOBS_URL": settings.jobs_url, "DEMO_HEARTBEAT_SECONDS": "1",
           "SMTP_HOST": sink.host, "SMTP_PORT": str(sink.port)}
    worker = [str(BIN / "backburner"), "worker", "examples.demo.worker:create_jobs",
              "--concurrency", "4"]
    web_settings = replace(settings, heartbeat_seconds=1.0)
    async with running_demo(web_settings, sink, worker=False) as demo:
        with processes() as procs:
            for n in range(3):
                procs.append(Proc(worker, env, tmp_path / f"worker{n}.log"))
            for proc in procs:
                await proc.wait_for(" started")
            monitor = (await demo.client.get("/monitor")).json()
            assert len(monitor["workers"]) == 3, monitor["workers"]
            # Six more ticks with all three schedulers running.
            start = len(await demo.jobs_of("demo.heartbeat"))
            deadline = time.monotonic() + 30
            while len(await demo.jobs_of("demo.heartbeat")) < start + 6:
                assert time.monotonic() < deadline, "the heartbeat stopped ticking"
                await asyncio.sleep(0.2)
            paused = await demo.client.post("/schedules/heartbeat/pause")
            assert paused.status_code == 200
            for proc in procs:
                assert proc.stop() == 0, proc.text()
            # What the schedulers enqueued last and no worker ran yet: drained by a worker in
            # burst mode (which runs no scheduler).
            drain = Proc([*worker, "--burst"], env, tmp_path / "drain.log")
            procs.append(drain)
            assert await asyncio.to_thread(drain.popen.wait, 60) == 0, drain.text()

        jobs = (await demo.client.get(
            "/jobs", params={"task": "demo.heartbeat", "limit": 500})).json()["jobs"]
        assert len(jobs) >= 7 and {j["state"] for j in jobs} == {"completed"}
        ticks = sorted(datetime.fromisoformat(j["result"]["tick"]) for j in jobs)
        assert len(set(ticks)) == len(ticks), "a tick was enqueued twice"
        gaps = {b - a for a, b in itertools.pairwise(ticks)}
        assert gaps == {timedelta(seconds=1)}, f"a tick was missed: {ticks}"
        enqueuers = [p.log.name for p in procs if "schedule heartbeat: enqueued" in p.text()]
        print(f"{len(ticks)} ticks, run by {len({j['worker_id'] for j in jobs})} workers, "
              f"enqueued by {enqueuers}")
        # The web app's listing agrees: the last run is the job of the latest tick.
        last = (await schedules(demo))["heartbeat"]["last_run"]
        assert datetime.fromisoformat(last["tick"]) == ticks[-1]
        assert last["state"] == "completed"
