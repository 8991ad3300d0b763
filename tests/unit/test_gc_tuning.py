"""The collector tuned (startup objects frozen, young threshold raised) while a FastAPI app
with Backburner's lifespan serves and while `backburner worker` runs, restored after; the
opt-outs; a process's own settings left alone."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backburner import Backburner
from backburner.cli import cli
from backburner.fastapi import backburner_lifespan
from backburner.gc_tuning import YOUNG_THRESHOLD, collector_tuned

DEFAULT = gc.get_threshold()


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "a previous test left objects frozen"
    assert DEFAULT[0] < YOUNG_THRESHOLD
    yield
    assert gc.get_threshold() == DEFAULT
    assert gc.isenabled()


def test_the_block_tunes_the_collector_and_restores_it() -> None:
    with collector_tuned():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *DEFAULT[1:])
    assert gc.get_freeze_count() == 0
    with collector_tuned(enabled=False):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == DEFAULT


def test_an_error_in_the_block_still_restores() -> None:
    with pytest.raises(RuntimeError), collector_tuned():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_a_process_s_own_settings_are_left_alone() -> None:
    gc.set_threshold(50_000, *DEFAULT[1:])
    try:
        with collector_tuned():
            assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[0] == 50_000
    finally:
        gc.set_threshold(*DEFAULT)
    gc.disable()
    try:
        with collector_tuned():
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() == DEFAULT
    finally:
        gc.enable()


def test_a_threshold_set_inside_the_block_is_kept() -> None:
    try:
        with collector_tuned():
            gc.set_threshold(1_234, *DEFAULT[1:])
        assert gc.get_threshold()[0] == 1_234
    finally:
        gc.set_threshold(*DEFAULT)


@pytest.mark.parametrize("tuned", [True, False])
def test_the_fastapi_lifespan_tunes_while_the_app_serves(tuned: bool) -> None:
    jobs = Backburner("memory://")
    api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False, gc_tuning=tuned))

    @api.get("/collector")
    async def collector() -> list[int]:
        return [gc.get_freeze_count(), gc.get_threshold()[0]]

    with TestClient(api) as client:
        frozen, young = client.get("/collector").json()
    assert (frozen > 0) is tuned
    assert young == (YOUNG_THRESHOLD if tuned else DEFAULT[0])
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
    async def frozen() -> list[int]:
        return [gc.get_freeze_count(), gc.get_threshold()[0]]

    return app


def __getattr__(name: str) -> Backburner:
    # `cli_app` for the worker command, built on first use from the test's database.
    if name == "cli_app":
        return build(f"sqlite:///{os.environ['BACKBURNER_TEST_DB']}")
    raise AttributeError(name)


@pytest.mark.parametrize("flag", ["--gc-tuning", "--no-gc-tuning"])
def test_the_worker_command_tunes_unless_told_not_to(flag: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"

    async def enqueue() -> str:
        async with build(url) as app:
            return (await app.tasks["frozen"].enqueue()).id

    job_id = asyncio.run(enqueue())
    result = CliRunner().invoke(
        cli, ["worker", "tests.unit.test_gc_tuning:cli_app", "--burst", "--no-uvloop", flag],
        env={"BACKBURNER_TEST_DB": f"{tmp_path}/w.db"},
    )
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == 0

    async def outcome() -> object:
        async with build(url) as app:
            record = await app.get_job(job_id)
            assert record is not None and record.state == "completed", record
            return record.result

    frozen, young = cast(list[int], asyncio.run(outcome()))
    tuned = flag == "--gc-tuning"
    assert (frozen > 0) is tuned
    assert young == (YOUNG_THRESHOLD if tuned else DEFAULT[0])
