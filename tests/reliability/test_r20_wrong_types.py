"""R20: stored jobs whose fields have the wrong type (written by something with write access
to the store, not by Backburner) fail with `invalid_payload`; they never take a worker down
nor make a read of the store fail, and good jobs around them complete. SQLite keeps
whatever type it is given (`priority='high'`); Redis keeps strings (a non-numeric
`attempt`, a hash missing fields). PostgreSQL's typed columns refuse such values."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any

import pytest
from rel_harness import Scenario
from services import SERVER_BACKENDS

from backburner import Backburner, FailureReason, JobState
from backburner.backends.records import INVALID_ROW

pytestmark = pytest.mark.reliability

# column -> a value of the wrong type, one job each
SQLITE_DAMAGE: dict[str, Any] = {
    "priority": "high", "max_attempts": "abc", "failures": "many", "timeout": "long",
    "created_at": "yesterday", "run_at": "soon",
}
REDIS_DAMAGE: dict[str, Any] = {
    "attempt": "abc", "max_attempts": "abc", "timeout": "long", "failures": "many",
    "lost": "some", "created_at": "yesterday", "priority": "high",
}
REDIS_MISSING = ["attempt", "max_attempts", "created_at", "run_at", "failures", "lost"]


async def _enqueue(app: Backburner, count: int) -> list[str]:
    task = app.get_task("rel.noop")
    return [(await task.enqueue(i)).id for i in range(count)]


def _damage_sqlite(scenario: Scenario, ids: list[str]) -> None:
    with contextlib.closing(sqlite3.connect(scenario.db_path, timeout=30)) as conn, conn:
        for job_id, (column, value) in zip(ids, SQLITE_DAMAGE.items(), strict=True):
            conn.execute(f"UPDATE backburner_jobs SET {column} = ? WHERE id = ?",
                         (value, job_id))


async def _damage_redis(app: Backburner, ids: list[str]) -> None:
    backend: Any = app.backend
    client = backend._client
    keys = backend.keys.queue("default")
    changes = [("set", c, v) for c, v in REDIS_DAMAGE.items()] + [
        ("del", c, None) for c in REDIS_MISSING]
    for job_id, (how, field, value) in zip(ids, changes, strict=True):
        if how == "set":
            await client.hset(keys.job(job_id), field, value)
        else:
            await client.hdel(keys.job(job_id), field)


@pytest.mark.parametrize("scenario", ["sqlite", *[k for k in SERVER_BACKENDS if k == "redis"]],
                         indirect=True)
def test_wrong_typed_fields_fail_their_job_and_nothing_else(scenario: Scenario) -> None:
    damaged_count = len(SQLITE_DAMAGE) if scenario.kind == "sqlite" else (
        len(REDIS_DAMAGE) + len(REDIS_MISSING))

    async def prepare(app: Backburner) -> list[str]:
        ids = await _enqueue(app, damaged_count)
        if scenario.kind == "redis":
            await _damage_redis(app, ids)
        return ids

    damaged = scenario.with_app(prepare)
    if scenario.kind == "sqlite":
        _damage_sqlite(scenario, damaged)

    # Reads of the whole store work before any worker touched them: each row shown, marked.
    async def listing(app: Backburner) -> list[Any]:
        return (await app.list_jobs(limit=1000)).jobs

    shown = {r.id: r for r in scenario.with_app(listing)}
    assert set(damaged) <= set(shown)
    # Fields of the wrong type are marked; a missing number reads as 0 (an older hash).
    wrong_typed = damaged[: len(SQLITE_DAMAGE) if scenario.kind == "sqlite" else len(REDIS_DAMAGE)]
    assert all(shown[i].errors and shown[i].errors[-1].type == INVALID_ROW for i in wrong_typed)

    scenario.pool.start(2, concurrency=4, lease=2)

    async def good_jobs(app: Backburner) -> list[int]:
        ids = await _enqueue(app, 20)
        return [int(v) for v in await asyncio.gather(
            *(app.job(i).result(timeout=30) for i in ids))]

    assert scenario.with_app(good_jobs) == list(range(20))
    scenario.wait_all_terminal(30)
    records = scenario.records(damaged)
    for job_id in damaged:
        rec = records[job_id]
        assert rec is not None
        assert rec.state is JobState.FAILED, (job_id, rec)
        assert rec.reason is FailureReason.INVALID_PAYLOAD, (job_id, rec.reason, rec.errors)
    assert scenario.with_app(listing)
    assert all(w.alive() for w in scenario.pool.workers), scenario.pool.logs()
    print(f"FIGURES R20 wrong types {scenario.kind}: invalid_payload={len(damaged)} "
          f"good=20/20 workers_alive={len(scenario.pool.alive())}")
