"""Whatever goes wrong while an attempt is prepared or run ends that attempt as a recorded
failure, counted against the retries, on every backend: the job never stays `running` with
no error, and the worker goes on (issue "Reliability defects found from outside", D1, D3).

- D1: an argument validator raising something other than `ValueError` (pydantic passes it
  through) escaped the worker's attempt task: the job stayed `running`, was released by the
  stray check and claimed again without limit, and no error was ever recorded.
- D3: `SystemExit` (or `KeyboardInterrupt`) raised by a task went through the event loop and
  ended the whole worker; in-process, `run_worker(burst=True)` raised it to its caller.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import AfterValidator

from backburner import Backburner, Backoff, JobState
from backburner.backends.protocol import NewJob
from backburner.backends.sqlite import SQLiteBackend
from backburner.job import FailureReason

FAST = Backoff(base=0.05, factor=2, jitter=0)


async def drain(app: Backburner) -> None:
    """A burst worker; anything it raises (SystemExit included) fails the test by name."""
    try:
        await asyncio.wait_for(app.run_worker(burst=True, concurrency=4), 30)
    except BaseException as exc:  # the defect is that it escapes at all
        pytest.fail(f"the worker let {exc!r} escape")


KNOWN = {"known": 1}


def _looked_up(value: str) -> str:
    KNOWN[value]  # KeyError for anything else: not a ValueError
    return value


async def test_validator_raising_keyerror_fails_the_job_as_invalid_payload(
    app: Backburner,
) -> None:
    @app.task(retries=3)
    async def lookup(name: Annotated[str, AfterValidator(_looked_up)]) -> str:
        return name

    # Enqueue validates too: the store hands back arguments the validator rejects when
    # another writer (another version of the app, say) stored them.
    good = await lookup.enqueue("known")
    await app.backend.insert([
        NewJob("id-unknown-name", lookup.name, "default", 0, '["unknown"]', "{}", 4),
    ])
    await drain(app)

    assert await good.result(timeout=1) == "known"
    record = await app.get_job("id-unknown-name")
    assert record is not None and record.state is JobState.FAILED, record
    assert record.reason is FailureReason.INVALID_PAYLOAD
    assert record.attempt == 1 and record.failures == 1
    assert [e.type for e in record.errors] == ["KeyError"]
    assert "unknown" in record.errors[0].message


async def test_sqlite_text_in_the_timeout_column_fails_the_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    app = Backburner(backend=SQLiteBackend(f"sqlite:///{path}"), poll_interval=0.2)
    ran: list[int] = []

    @app.task(retries=2)
    async def job_with_timeout() -> None:
        ran.append(1)

    async with app:
        broken = await job_with_timeout.enqueue()
        fine = await job_with_timeout.enqueue()
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE backburner_jobs SET timeout = 'soon' WHERE id = ?", (broken.id,))
        await drain(app)
        record = await broken.info()
        assert (await fine.info()).state is JobState.COMPLETED
    assert record.state is JobState.FAILED, record
    assert record.reason in (FailureReason.INVALID_PAYLOAD, FailureReason.ERROR)
    assert record.errors and "timeout" in record.errors[0].message
    assert ran == [1]  # only the sound job ran: the broken one never started


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("flavour", ["async", "sync"])
async def test_task_raising_systemexit_fails_its_job_and_the_worker_goes_on(
    app: Backburner, raised: type[BaseException], flavour: str
) -> None:
    def body(code: int) -> int:
        if code:
            raise raised(code)
        return code

    if flavour == "async":
        @app.task(name="quitter", retries=0)
        async def quitter_async(code: int) -> int:
            return body(code)
    else:
        @app.task(name="quitter", retries=0)
        def quitter_sync(code: int) -> int:
            return body(code)

    quitter = app.get_task("quitter")
    bad = await quitter.enqueue(3)
    after = [await quitter.enqueue(0) for _ in range(3)]
    await drain(app)

    record = await bad.info()
    assert record.state is JobState.FAILED and record.reason is FailureReason.ERROR, record
    assert record.lost == 0 and record.failures == 1
    assert [e.type for e in record.errors] == [raised.__name__]
    assert record.errors[0].traceback and raised.__name__ in record.errors[0].traceback
    for job in after:
        assert await job.result(timeout=1) == 0


async def test_systemexit_counts_against_the_retries(app: Backburner) -> None:
    calls: list[int] = []

    @app.task(retries=1, backoff=FAST)
    async def exits_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit("once")
        return "done"

    job = await exits_once.enqueue()
    await drain(app)
    record = await job.info()
    assert record.state is JobState.SCHEDULED and record.failures == 1, record
    await asyncio.sleep(0.1)
    await drain(app)
    assert await job.result(timeout=1) == "done"
    assert len(calls) == 2
