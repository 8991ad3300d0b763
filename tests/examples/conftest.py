"""Fixtures for the example app's tests: a real local SMTP server, a real HTTP target, the
app under uvicorn on a real SQLite file; or the app called in-process with its jobs on an
in-memory store (the `backburner` fixture of Backburner's pytest plugin)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from demo_harness import Demo, Target, allow, running_demo, serve, target_app
from fastapi import FastAPI

from backburner import Backburner
from backburner.testing import JobsHarness
from examples.demo.settings import Settings, SmtpSettings
from examples.demo.smtp_sink import SmtpSink
from examples.demo.tasks import DemoTasks
from examples.demo.web import create_app


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as started:
        yield started


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    found = Target()
    async with serve(target_app(found)) as url:
        found.url = url
        yield found


@pytest.fixture
def settings(tmp_path: Path, sink: SmtpSink, target: Target) -> Settings:
    data = tmp_path / "data"
    return Settings(
        data_dir=data,
        jobs_url=f"sqlite:///{tmp_path}/jobs.db",
        smtp=SmtpSettings(host=sink.host, port=sink.port, timeout=10),
        slow_seconds=0.05,
        step_seconds=0.02,
        max_upload_bytes=256 * 1024,
        webhook_allow=allow(target),
        retry_backoff=0.05,
        smtp_fail_rate=0.0,
    )


@pytest.fixture
async def demo(settings: Settings, sink: SmtpSink) -> AsyncIterator[Demo]:
    async with running_demo(settings, sink) as running:
        yield running




# -- the testing kit (backburner.pytest_plugin): the demo's app on an in-memory store -------
@pytest.fixture
def demo_api(settings: Settings, sink: SmtpSink) -> FastAPI:
    """The demo's FastAPI app, no embedded worker: called in-process (ASGI), never served."""
    return create_app(settings, sink=sink, worker=False)


@pytest.fixture
def backburner_app(demo_api: FastAPI) -> Backburner:
    """Which app the plugin's `backburner` fixture runs on memory: the demo builds its app
    per settings (no module-level one to name in an ini option), so this override says."""
    tasks: DemoTasks = demo_api.state.demo_tasks
    return tasks.send_email.app


@pytest.fixture
async def api(
    demo_api: FastAPI, backburner: JobsHarness
) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the demo called in-process (its lifespan run), its jobs in `backburner`'s
    memory store: requests enqueue, `await backburner.drain()` runs them."""
    transport = httpx2.ASGITransport(app=demo_api)
    async with (
        demo_api.router.lifespan_context(demo_api),
        httpx2.AsyncClient(transport=transport, base_url="http://demo") as client,
    ):
        yield client
