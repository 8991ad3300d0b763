"""R20 on PostgreSQL: rows written straight into the jobs table by something other than
Backburner (a pickle payload, task names that are not registered, one naming an importable
module with a side effect) are neither unpickled nor imported: they fail with
`invalid_payload` / `unknown_task`, and the worker keeps serving. (The SQLite twin is
test_r20_untrusted_rows.py; only the raw insert differs.)"""

from __future__ import annotations

import asyncio
import os
import pickle
import uuid

import asyncpg  # type: ignore[import-untyped]
import pytest
from rel_harness import Scenario
from services import SERVER_BACKENDS

from backburner import Backburner, FailureReason, JobState
from backburner.backends.postgres.config import parse_url

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif("postgres" not in SERVER_BACKENDS, reason="no PostgreSQL backend"),
]


class _MakeDir:
    """Unpickling this calls `os.mkdir(path)`: proof that something unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def _insert_raw(url: str, rows: list[tuple[str, str, str, str]]) -> None:
    """(id, task, args, kwargs) rows, pending, written with plain asyncpg."""
    config = parse_url(url)

    async def go() -> None:
        conn = await asyncpg.connect(config.dsn)
        try:
            await conn.executemany(
                f"INSERT INTO {config.quoted_schema}.jobs (id, task, queue, priority, state, "
                "args, kwargs, max_attempts, created_at, updated_at, run_at) "
                "VALUES ($1, $2, 'default', 0, 'pending', $3, $4, 4, now(), now(), now())",
                rows,
            )
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.mark.parametrize("scenario", ["postgres"], indirect=True)
def test_pickles_and_unknown_tasks_are_refused_without_running_anything(
    scenario: Scenario,
) -> None:
    markers = scenario.marker_dir
    unpickled = str(markers / "unpickled")
    text_pickle = pickle.dumps(_MakeDir(unpickled), protocol=0).decode("ascii")
    # text columns hold no NUL byte: the binary pickle as near to itself as text allows
    binary_pickle = (
        pickle.dumps(_MakeDir(unpickled), protocol=pickle.HIGHEST_PROTOCOL)
        .replace(b"\x00", b"").decode("latin-1")
    )

    async def create_schema(app: Backburner) -> None:
        await app.open()

    scenario.with_app(create_schema)

    def new_id() -> str:
        return f"raw-{uuid.uuid4().hex}"

    invalid = {
        new_id(): ("rel.noop", text_pickle, "{}"),
        new_id(): ("rel.noop", binary_pickle, "{}"),
        new_id(): ("rel.noop", "[]", text_pickle),
        new_id(): ("rel.noop", '{"x": 1}', "{}"),
        new_id(): ("rel.noop", '["not an int"]', "{}"),
    }
    unknown = {
        new_id(): ("rel_evil.run", "[]", "{}"),
        new_id(): ("rel_evil:run", "[]", "{}"),
        new_id(): ("os.mkdir", f'["{markers / "os_mkdir"}"]', "{}"),
        new_id(): ("rel_evil.run", text_pickle, binary_pickle),
    }
    _insert_raw(scenario.url, [(i, *row) for i, row in {**invalid, **unknown}.items()])

    scenario.pool.start(1, concurrency=4, lease=2)
    scenario.wait_all_terminal(30)
    records = scenario.records(list(invalid) + list(unknown))
    for ids, reason in ((invalid, FailureReason.INVALID_PAYLOAD),
                        (unknown, FailureReason.UNKNOWN_TASK)):
        for job_id in ids:
            rec = records[job_id]
            assert rec is not None
            assert rec.state is JobState.FAILED, (job_id, rec)
            assert rec.reason is reason, (job_id, rec.reason, rec.errors)
            assert rec.attempt == 1, "refused at once, never retried"
    assert sorted(p.name for p in markers.iterdir()) == [], "something was unpickled"

    async def normal_job(app: Backburner) -> int:
        job = await app.get_task("rel.noop").enqueue(41)
        return int(await job.result(timeout=20))

    assert scenario.with_app(normal_job) == 41
    assert all(w.alive() for w in scenario.pool.workers)
    print(f"FIGURES R20 postgres: invalid_payload={len(invalid)} unknown_task={len(unknown)} "
          f"markers_created=0")
