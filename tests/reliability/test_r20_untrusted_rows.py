"""R20: rows written straight into the SQLite table by something other than Backburner.

A pickle payload and task names that are not registered (one naming an importable module
with a side effect) must neither be unpickled nor imported: the jobs fail with
`invalid_payload` / `unknown_task`, and the worker keeps serving."""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from rel_harness import Scenario

from backburner import Backburner, FailureReason, JobState

pytestmark = pytest.mark.reliability


class _MakeDir:
    """Unpickling this calls `os.mkdir(path)`: proof that something unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def _insert_raw(db: Path, rows: list[tuple[str, str, object, object]]) -> None:
    """(id, task, args, kwargs) rows, pending, written with plain sqlite3."""
    now = time.time()
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        conn.executemany(
            "INSERT INTO backburner_jobs (id, task, queue, priority, state, args, kwargs, "
            "max_attempts, created_at, updated_at, run_at) "
            "VALUES (?, ?, 'default', 0, 'pending', ?, ?, 4, ?, ?, ?)",
            [(i, t, a, k, now, now, now) for i, t, a, k in rows],
        )


def test_pickles_and_unknown_tasks_are_refused_without_running_anything(
    scenario: Scenario,
) -> None:
    markers = scenario.marker_dir
    # The payload is potent: unpickling a twin of it here does create its marker.
    proof = markers / "proof"
    pickle.loads(pickle.dumps(_MakeDir(str(proof)), protocol=0))
    assert proof.is_dir()

    unpickled = str(markers / "unpickled")
    text_pickle = pickle.dumps(_MakeDir(unpickled), protocol=0).decode("ascii")
    binary_pickle = pickle.dumps(_MakeDir(unpickled), protocol=pickle.HIGHEST_PROTOCOL)

    async def create_schema(app: Backburner) -> None:
        await app.open()

    scenario.with_app(create_schema)

    def new_id() -> str:
        return f"raw-{uuid.uuid4().hex}"

    invalid = {
        new_id(): ("rel.noop", text_pickle, "{}"),                 # pickle (protocol 0, TEXT)
        new_id(): ("rel.noop", binary_pickle, "{}"),               # pickle (BLOB)
        new_id(): ("rel.noop", "[]", binary_pickle),               # pickle as kwargs
        new_id(): ("rel.noop", '{"x": 1}', "{}"),                  # JSON of the wrong shape
        new_id(): ("rel.noop", '["not an int"]', "{}"),            # fails the signature
    }
    unknown = {
        new_id(): ("rel_evil.run", "[]", "{}"),                    # importable, side effect
        new_id(): ("rel_evil:run", "[]", "{}"),
        new_id(): ("os.mkdir", f'["{markers / "os_mkdir"}"]', "{}"),
        new_id(): ("rel_evil.run", text_pickle, binary_pickle),    # unknown and pickled
    }
    _insert_raw(scenario.db_path, [(i, *row) for i, row in {**invalid, **unknown}.items()])

    scenario.pool.start(1, concurrency=4, lease=2)
    scenario.wait_all_terminal(30)
    records = scenario.records(list(invalid) + list(unknown))  # the client's read path too

    for ids, reason in ((invalid, FailureReason.INVALID_PAYLOAD),
                        (unknown, FailureReason.UNKNOWN_TASK)):
        for job_id in ids:
            rec = records[job_id]
            assert rec is not None
            assert rec.state is JobState.FAILED, (job_id, rec)
            assert rec.reason is reason, (job_id, rec.reason, rec.errors)
            assert rec.attempt == 1, "refused at once, never retried"
            assert [e.reason for e in rec.errors] == [reason]
    made = sorted(p.name for p in markers.iterdir())
    assert made == ["proof"], f"something was unpickled or imported: {made}"

    # The worker survived all of it and still runs ordinary jobs.
    async def normal_job(app: Backburner) -> int:
        job = await app.get_task("rel.noop").enqueue(41)
        return int(await job.result(timeout=20))

    assert scenario.with_app(normal_job) == 41
    assert all(w.alive() for w in scenario.pool.workers)
    print(f"FIGURES R20: invalid_payload={len(invalid)} unknown_task={len(unknown)} "
          f"markers_created=0")
