"""Fixtures for the example app's tests: a real local SMTP server, a real HTTP target, the
app under uvicorn on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from demo_harness import Demo, Target, allow, running_demo, serve, target_app

from examples.demo.settings import Settings, SmtpSettings
from examples.demo.smtp_sink import SmtpSink


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


