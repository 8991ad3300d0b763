"""R20 with real worker processes: text the user's code produces holding NUL (an exception
message, a traceback, a result, a progress message) is stored as given on every store. On
PostgreSQL it used to crash the worker's acknowledgement loop (jsonb refuses U+0000): the
worker exited, the job crashed every worker it landed on and ended `worker_lost`."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ALL_KINDS
from r20_text_app import NUL_TEXT, build
from rel_harness import Scenario

from backburner import FailureReason, JobState

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_nul_in_errors_and_results_keeps_the_worker(scenario: Scenario) -> None:
    async def enqueue() -> tuple[str, str]:
        async with build(scenario.url) as app:
            failing = await app.get_task("r20.nul_error").enqueue()
            echoed = await app.get_task("r20.nul_result").enqueue(NUL_TEXT)
            return failing.id, echoed.id

    failing, echoed = asyncio.run(enqueue())
    scenario.pool.start(1, concurrency=2, lease=2, app="r20_text_app:app")
    scenario.wait_all_terminal(30)

    records = scenario.records([failing, echoed])
    failed, done = records[failing], records[echoed]
    assert failed is not None and failed.state is JobState.FAILED, failed
    assert failed.reason is FailureReason.ERROR, (failed.reason, failed.errors)
    assert [(e.type, e.message) for e in failed.errors] == [("ValueError", NUL_TEXT)] * 2
    assert all(e.traceback and "ValueError" in e.traceback for e in failed.errors)
    assert done is not None and done.state is JobState.COMPLETED, done
    assert done.result == NUL_TEXT
    assert done.progress is not None and done.progress.message == NUL_TEXT
    assert all(w.alive() for w in scenario.pool.workers), scenario.pool.logs()
