"""Operator queries on every backend: search and creation-time filters with bounded pages,
exact counts, failure groups and bulk actions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from backburner import Backburner, codec
from backburner.backends import records
from backburner.backends.protocol import Completion, Failure, JobFilter, NewJob
from backburner.bulk import apply
from backburner.errors import ConfigurationError
from backburner.failures import (
    failure_groups,
    fingerprint,
    message_template,
    retry_failure_group,
)
from backburner.ids import new_job_id
from backburner.job import FailureReason, JobState


def new(task: str = "t", queue: str = "default", delay: float = 0.0, **kwargs: Any) -> NewJob:
    return NewJob(
        id=new_job_id(), task=task, queue=queue, priority=0, args=codec.dumps([]),
        kwargs=codec.dumps(kwargs), max_attempts=1, delay=delay,
    )


async def insert(app: Backburner, *jobs: NewJob) -> list[str]:
    await app.backend.insert(list(jobs))
    return [j.id for j in jobs]


async def finish(
    app: Backburner, queue: str = "default", *, result: Any = None,
    error: tuple[str, str] | None = None,
) -> str:
    """Claim the next job of `queue` and complete it, or fail it for good with `error`."""
    claim = await app.backend.claim("w1", [queue], 1, 30.0)
    job = claim.jobs[0]
    if error is None:
        assert await app.backend.complete([Completion(job.id, job.attempt, codec.dumps(result))])
    else:
        failure = Failure(job.id, job.attempt,
                          {"type": error[0], "message": error[1], "traceback": "tb secret"},
                          FailureReason.ERROR)
        assert await app.backend.fail([failure])
    return job.id


async def everything(app: Backburner, limit: int = 2, **filters: Any) -> list[str]:
    """Every id the listing gives, following cursors through short and empty pages."""
    seen: list[str] = []
    cursor = None
    while True:
        page = await app.list_jobs(limit=limit, cursor=cursor, **filters)
        assert len(page.jobs) <= limit
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_search_looks_in_arguments_results_and_errors(app: Backburner) -> None:
    await insert(app, new(to="Ada@Example.com"))
    by_kwarg = await finish(app, result={"sent": "ok"})
    await insert(app, new(to="bob"))
    by_result = await finish(app, result={"receipt": "Ünïcode-Réçu"})
    await insert(app, new(to="carol"))
    by_error = await finish(app, error=("SMTPRecipientsRefused", "mailbox full for carol"))
    await insert(app, new(to="dan"))
    by_type = await finish(app, error=("KeyError", "'x'"))
    (pending,) = await insert(app, new(note="nothing to see"))

    async def found(search: str) -> set[str]:
        ids = set(await everything(app, search=search))
        assert await app.count_jobs(search=search) == len(ids)
        return ids

    assert await found("ada@example") == {by_kwarg}
    assert await found("ünïcode-réçu") == {by_result}  # case folded beyond ASCII
    assert await found("MAILBOX FULL") == {by_error}
    assert await found("keyerror") == {by_type}
    assert await found("carol") == {by_error}  # its kwargs and its error message: once
    assert await found("secret") == set()  # tracebacks are not searched
    assert await found("%") == set() and await found("_") == set()  # no LIKE wildcards
    assert await found("") == {by_kwarg, by_result, by_error, by_type, pending}
    assert set(await everything(app, search="to", states=["failed"])) == {by_error, by_type}
    assert await everything(app, search="carol", states=["completed"]) == []


async def test_created_after_and_before(app: Backburner) -> None:
    (first,) = await insert(app, new())
    await asyncio.sleep(0.02)
    (second,) = await insert(app, new())
    await asyncio.sleep(0.02)
    (third,) = await insert(app, new())
    at = {j.id: j.created_at.timestamp() for j in (await app.list_jobs()).jobs}
    # Midpoints: a stored time read back as a datetime is rounded to the microsecond.
    one_two, two_three = (at[first] + at[second]) / 2, (at[second] + at[third]) / 2
    assert await everything(app, created_after=one_two) == [third, second]
    assert await everything(app, created_before=datetime.fromtimestamp(one_two, UTC)) == [first]
    assert await everything(app, created_after=one_two, created_before=two_three) == [second]
    assert await app.count_jobs(created_before=two_three) == 2
    assert await app.count_jobs(created_after=two_three, created_before=one_two) == 0
    with pytest.raises(ConfigurationError, match="created_after"):
        await app.list_jobs(created_after=float("nan"))
    with pytest.raises(ConfigurationError, match="aware"):
        await app.list_jobs(created_after=datetime.now())


async def test_a_scan_is_bounded_per_page_and_cursors_still_cover_everything(
    app: Backburner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "SCAN_WINDOW", 3)
    ids = []
    for i in range(11):
        ids += await insert(app, new(queue="q1" if i % 2 else "q2", n=f"hit{i}" if i in (0, 5, 6)
                                     else "miss"))
    newest_first = list(reversed(ids))
    hits = [ids[6], ids[5], ids[0]]
    pages = []
    cursor = None
    while True:
        page = await app.list_jobs(search="HIT", limit=1, cursor=cursor)
        pages.append([j.id for j in page.jobs])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [i for p in pages for i in p] == hits
    assert [] in pages  # a window with no hit: an empty page that still goes on
    assert await app.count_jobs(search="hit") == 3
    # Unscanned filters are not windowed on stores that index them, and always complete.
    assert await everything(app, limit=4) == newest_first
    assert await everything(app, limit=2, queue="q1") == [i for i in newest_first
                                                          if ids.index(i) % 2]
    assert await everything(app, limit=2, task="t", search="miss") == [
        i for i in newest_first if i not in hits]


async def test_count_jobs_matches_the_listing(app: Backburner) -> None:
    await insert(app, new(queue="a"), new(queue="a"), new(queue="b", delay=60),
                 new(task="other", queue="b"))
    await app.backend.claim("w", ["a"], 1, 30)
    for filters in ({}, {"states": ["pending"]}, {"queue": "b"}, {"task": "other"},
                    {"states": ["pending", "scheduled"], "queue": "b"}, {"queue": "nope"},
                    {"states": ["running"], "task": "t"}):
        assert await app.count_jobs(**filters) == len(await everything(app, **filters)), filters
    assert await app.count_jobs(JobFilter(states=(JobState.RUNNING,))) == 1
    assert await app.count_jobs() == 4


def test_message_templates_hide_what_varies() -> None:
    assert message_template("connect to 10.0.0.7:5432 failed after 3.5 s") == (
        "connect to <n>:<n> failed after <n> s")
    assert message_template("user 'ada' not found (id 0x1f3a)") == "user <str> not found (id <hex>)"
    assert message_template('job 0193b9e0-5c1a-7e2b-9d3c-1a2b3c4d5e6f: "x y" gone') == (
        "job <uuid>: <str> gone")
    assert message_template("sha 3f2a9c81d4e5 mismatch at row -12") == (
        "sha <hex> mismatch at row <n>")
    assert message_template("v2 endpoint deadbeef") == "v2 endpoint deadbeef"


async def test_failure_groups_and_retrying_one(app: Backburner) -> None:
    fails = [("TimeoutError", "no answer from 10.0.0.1 after 3 s"),
             ("TimeoutError", "no answer from 10.0.0.2 after 5 s"),
             ("KeyError", "'user_42'"),
             ("TimeoutError", "no answer from 10.0.0.3 after 1 s")]
    ids = []
    for kind, message in fails:
        await insert(app, new(task="sync"))
        ids.append(await finish(app, error=(kind, message)))
    await insert(app, new(task="other"))
    other = await finish(app, error=("TimeoutError", "no answer from 10.0.0.9 after 2 s"))
    await insert(app, new(task="sync"))
    await finish(app, result="fine")  # completed jobs are not failures

    groups = await failure_groups(app)
    assert [(g.task, g.error_type, g.count) for g in groups] == [
        ("sync", "TimeoutError", 3), ("other", "TimeoutError", 1), ("sync", "KeyError", 1)
    ] or [(g.task, g.error_type, g.count) for g in groups] == [
        ("sync", "TimeoutError", 3), ("sync", "KeyError", 1), ("other", "TimeoutError", 1)
    ]
    timeouts = groups[0]
    assert timeouts.message_template == "no answer from <n> after <n> s"
    assert timeouts.job_ids == (ids[3], ids[1], ids[0])
    assert timeouts.sample_job_id == ids[3]
    assert timeouts.sample_message == "no answer from 10.0.0.3 after 1 s"
    assert timeouts.first_seen <= timeouts.last_seen
    record = await app.get_job(ids[0])
    assert record is not None and fingerprint(record) == timeouts.fingerprint
    assert len(await failure_groups(app, scan=2)) == 2  # only the two newest failures

    assert await retry_failure_group(app, timeouts.fingerprint) == 3
    for job_id in (ids[0], ids[1], ids[3]):
        again = await app.get_job(job_id)
        assert again is not None and again.state is JobState.PENDING
    assert (await app.get_job(other)).state is JobState.FAILED  # type: ignore[union-attr]
    assert await retry_failure_group(app, timeouts.fingerprint) == 0
    assert [g.count for g in await failure_groups(app)] == [1, 1]


async def test_bulk_actions_apply_where_they_are_valid(app: Backburner) -> None:
    for _ in range(3):
        await insert(app, new(task="sync"))
        await finish(app, error=("OSError", "down"))
    await insert(app, new(task="sync"))
    completed = await finish(app, result=1)
    waiting = await insert(app, new(task="sync"), new(task="sync", delay=60), new(task="x"))

    retried = await apply(app, app.job_filter(task="sync"), "retry")
    assert (retried.matched, retried.changed, retried.skipped) == (3, 3, 0)
    assert await app.count_jobs(states=["failed"]) == 0

    cancelled = await app.bulk(app.job_filter(task="sync"), "cancel", limit=4)
    assert (cancelled.matched, cancelled.changed) == (4, 4)
    assert await app.count_jobs(states=["cancelled"]) == 4
    assert await app.count_jobs(states=["pending", "scheduled"]) == 2  # one of sync, and x

    deleted = await apply(app, app.job_filter(states=["completed", "cancelled"]), "delete")
    assert (deleted.matched, deleted.changed) == (5, 5)
    assert await app.get_job(completed) is None
    assert await app.count_jobs() == 2
    assert waiting[2] in await everything(app)

    nothing = await apply(app, app.job_filter(states=["pending"]), "retry")
    assert (nothing.matched, nothing.changed, nothing.skipped) == (0, 0, 0)
    with pytest.raises(ConfigurationError, match="unknown bulk action"):
        await apply(app, JobFilter(), "explode")  # type: ignore[arg-type]


async def test_bulk_is_safe_while_jobs_change_underneath(
    app: Backburner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs enqueued while a bulk action walks are never visited; jobs that leave their
    state meanwhile are skipped, not acted on twice."""
    import backburner.bulk

    monkeypatch.setattr(backburner.bulk, "_PAGE", 7)
    before = await insert(app, *(new(task="sync") for _ in range(40)))
    late: list[str] = []
    tasks: list[asyncio.Task[Any]] = []

    async def meanwhile() -> None:
        late.extend(await insert(app, *(new(task="sync") for _ in range(5))))
        # Another operator cancels the oldest ones first: this walk will find them gone.
        for job_id in before[:3]:
            await app.cancel(job_id)

    def on_change(changes: list[Any]) -> None:
        if not tasks and any(c.state == "cancelled" for c in changes):
            tasks.append(asyncio.get_running_loop().create_task(meanwhile()))

    app.instrumentation.observers.append(on_change)
    result = await apply(app, app.job_filter(task="sync"), "cancel")
    await asyncio.gather(*tasks)
    states = [(await app.get_job(i)) for i in late]
    assert len(late) == 5 and all(r is not None and r.state is JobState.PENDING for r in states)
    # The three cancelled meanwhile had left the walked states when the walk reached them.
    assert (result.matched, result.changed, result.skipped) == (37, 37, 0)
    assert await app.count_jobs(task="sync", states=["cancelled"]) == 40
