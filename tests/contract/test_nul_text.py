"""Text the user's code produces, and ids and filters a caller sends, may hold a NUL
character. Every store keeps the text as it was given (PostgreSQL's jsonb cannot hold
U+0000: the PostgreSQL backend stores an escaped form, see its `text_escape` module), and
every store answers a NUL in an id or a filter the same way: no such job, or an error
naming the bad value, never a store error."""

from __future__ import annotations

import asyncio

import pytest

from backburner import Backburner, JobContext, JobState
from backburner.errors import ConfigurationError, JobNotFoundError
from backburner.job import FailureReason

NUL = "a\x00b"
# The escape's own marker must survive too, and a backslash before a "u0000".
TRICKY = "x\x00\ue000y\\u0000z\ue0000"


async def drain(app: Backburner) -> None:
    await asyncio.wait_for(app.run_worker(burst=True, concurrency=4), 30)


async def test_nul_in_arguments_result_progress_and_errors_is_kept(app: Backburner) -> None:
    @app.task(retries=0)
    async def echo(text: str, *, other: str, ctx: JobContext) -> dict[str, object]:
        await ctx.progress(1, 2, message=text + other)
        return {text: other, "list": [text, other]}

    @app.task(retries=0)
    async def boom(text: str) -> None:
        raise ValueError(text)

    ok = await echo.enqueue(NUL, other=TRICKY)
    bad = await boom.enqueue(TRICKY)
    await drain(app)

    done = await app.get_job(ok.id)
    assert done is not None and done.state is JobState.COMPLETED, done
    stored = [*done.args, *done.kwargs.values()]  # the signature decides where each goes
    assert sorted(stored) == sorted([NUL, TRICKY])
    assert done.result == {NUL: TRICKY, "list": [NUL, TRICKY]}
    assert done.progress is not None and done.progress.message == NUL + TRICKY
    assert await ok.result(timeout=5) == {NUL: TRICKY, "list": [NUL, TRICKY]}

    failed = await app.get_job(bad.id)
    assert failed is not None and failed.state is JobState.FAILED, failed
    assert failed.reason is FailureReason.ERROR
    (error,) = failed.errors
    assert error.type == "ValueError" and error.message == TRICKY
    assert error.traceback is not None and "ValueError" in error.traceback

    # Listings and searches read the same rows.
    page = await app.list_jobs(task=echo.name)
    assert [j.result for j in page.jobs] == [{NUL: TRICKY, "list": [NUL, TRICKY]}]
    assert [j.id for j in (await app.list_jobs(search="\ue000y")).jobs] == [bad.id, ok.id]


BAD_IDS = ["\x00", "abc\x00def", "x" * 10_000]


@pytest.mark.parametrize("job_id", BAD_IDS)
async def test_a_bad_job_id_is_no_such_job_on_every_store(app: Backburner, job_id: str) -> None:
    assert await app.get_job(job_id) is None
    assert await app.delete(job_id) is False
    with pytest.raises(JobNotFoundError):
        await app.cancel(job_id)
    with pytest.raises(JobNotFoundError):
        await app.retry(job_id)
    with pytest.raises(JobNotFoundError):
        await app.wait_for(job_id, timeout=1)
    with pytest.raises(JobNotFoundError):
        await app.get_flow(job_id)


@pytest.mark.parametrize("field", ["task", "queue", "search"])
async def test_a_nul_in_a_filter_is_refused_naming_it(app: Backburner, field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        app.job_filter(**{field: "a\x00b"})
    with pytest.raises(ConfigurationError, match=field):
        await app.list_jobs(**{field: "a\x00b"})
    with pytest.raises(ConfigurationError, match=field):
        await app.count_jobs(**{field: "a\x00b"})
