"""Startup objects frozen out of the collector's full passes: while a FastAPI app with
Backburner's lifespan serves, and while `backburner worker` runs, never after; opt-outs."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backburner import Backburner
from backburner.cli import cli
from backburner.fastapi import backburner_lifespan
from backburner.startup_gc import startup_objects_frozen


@pytest.fixture(autouse=True)
def _nothing_frozen_around() -> None:
    assert gc.get_freeze_count() == 0, "a previous test left objects frozen"


def test_the_block_freezes_what_exists_and_gives_it_back() -> None:
    keep = [object() for _ in range(3)]
    with startup_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with startup_objects_frozen(enabled=False):
        assert gc.get_freeze_count() == 0
    assert keep


def test_an_error_in_the_block_still_unfreezes() -> None:
    with pytest.raises(RuntimeError), startup_objects_frozen():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("freeze", [True, False])
def test_the_fastapi_lifespan_freezes_while_the_app_serves(freeze: bool) -> None:
    jobs = Backburner("memory://")
    api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False, gc_freeze=freeze))

    @api.get("/frozen")
    async def frozen() -> int:
        return gc.get_freeze_count()

    with TestClient(api) as client:
        count = client.get("/frozen").json()
    assert (count > 0) is freeze
    assert gc.get_freeze_count() == 0


def test_the_app_lifespan_it_wraps_started_before_the_freeze() -> None:
    seen: list[int] = []

    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[None]:
        seen.append(gc.get_freeze_count())
        yield
        seen.append(gc.get_freeze_count())

    jobs = Backburner("memory://")
    api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False, wrap=own))
    with TestClient(api):
        assert gc.get_freeze_count() > 0
    # The app's own startup ran before the freeze (what it builds is frozen too) and its
    # shutdown after the unfreeze.
    assert seen == [0, 0]


def build(url: str) -> Backburner:
    app = Backburner(url, poll_interval=0.1)

    @app.task(name="frozen", retries=0)
    async def frozen() -> int:
        return gc.get_freeze_count()

    return app


def __getattr__(name: str) -> Backburner:
    # `cli_app` for the worker command, built on first use from the test's database.
    if name == "cli_app":
        return build(f"sqlite:///{os.environ['BACKBURNER_TEST_DB']}")
    raise AttributeError(name)


@pytest.mark.parametrize("flag", ["--gc-freeze", "--no-gc-freeze"])
def test_the_worker_command_freezes_unless_told_not_to(flag: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"

    async def enqueue() -> str:
        async with build(url) as app:
            return (await app.tasks["frozen"].enqueue()).id

    job_id = asyncio.run(enqueue())
    result = CliRunner().invoke(
        cli, ["worker", "tests.unit.test_startup_gc:cli_app", "--burst", "--no-uvloop", flag],
        env={"BACKBURNER_TEST_DB": f"{tmp_path}/w.db"},
    )
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == 0

    async def outcome() -> object:
        async with build(url) as app:
            record = await app.get_job(job_id)
            assert record is not None and record.state == "completed", record
            return record.result

    count = asyncio.run(outcome())
    assert isinstance(count, int)
    assert (count > 0) is (flag == "--gc-freeze")
