"""R12: the SQLite store's guards, each checked with real processes on a real file.

- WAL is enforced: a file another program made in rollback-journal mode, and held open in a
  read transaction while a worker starts, is switched to WAL once that read ends; the
  worker waits meanwhile (no driver exception, no crash) and then works.
- No connection is carried across fork: a process that holds the store's connections forks
  children while its loop runs; parent and children write at once; the children's jobs and
  the parent's all land, the parent's connections still work after the children exit, and
  `PRAGMA integrity_check` is ok (r12_fork.py).
- WAL growth is bounded under a polling dashboard: two workers drain jobs an API process
  enqueues while its dashboard polls listings every 20 ms; the WAL file, sampled
  throughout, stays under its limit and its header shows the log started over again and
  again (checkpoints complete between the dashboard's reads)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from rel_harness import HERE, Scenario, logs_mention

from backburner import Backburner

pytestmark = pytest.mark.reliability

WAL_LIMIT = 64 * 1024 * 1024
"""What the store promises (journal_size_limit and the restart size in connection.py)."""


@pytest.mark.timeout(60)
def test_wal_is_enforced_on_a_file_another_program_made(scenario: Scenario) -> None:
    with contextlib.closing(sqlite3.connect(scenario.db_path, isolation_level=None)) as other:
        assert other.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        other.execute("CREATE TABLE their_table (x)")
        other.execute("BEGIN")
        other.execute("SELECT * FROM their_table").fetchall()  # a read lock held
        (worker,) = scenario.pool.start(1, concurrency=2)
        # The worker is trying to switch the file to WAL; it must wait, not crash.
        held_until = time.monotonic() + 2.0
        while time.monotonic() < held_until:
            assert worker.alive(), scenario.pool.logs()
            time.sleep(0.1)
        other.execute("COMMIT")

    async def enqueue(app: Backburner) -> str:
        return (await app.get_task("rel.noop").enqueue(7)).id

    job_id = scenario.with_app(enqueue)
    scenario.wait_for(lambda: scenario.record(job_id).result == 7, 30, "the job to run")
    with contextlib.closing(sqlite3.connect(scenario.db_path)) as fresh:
        assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert worker.alive()
    assert logs_mention(scenario.pool, "traceback", "operationalerror") == [], (
        scenario.pool.logs())
    print("FIGURES R12 wal: a rollback-journal file read-locked for 2 s is switched to WAL; "
          "the worker waited, then ran the job")


@pytest.mark.timeout(120)
def test_no_connection_is_carried_across_fork(scenario: Scenario) -> None:
    children, jobs = 4, 150
    done = subprocess.run(
        [sys.executable, str(HERE / "r12_fork.py"), scenario.url, str(children), str(jobs),
         str(scenario.directory)],
        cwd=HERE, env=scenario.env, capture_output=True, text=True, timeout=100, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    expected = children * jobs + 2 * jobs + 1
    assert summary == {"codes": [0] * children, "parent": 2 * jobs + 1,
                       "children": children * jobs, "unique": expected,
                       "completed": expected, "integrity": "ok"}, summary
    print(f"FIGURES R12 fork: {children} children forked mid-loop + parent wrote {expected} "
          "jobs at once; all completed; parent's connections fine after; integrity ok")


@pytest.mark.timeout(180)
def test_wal_growth_is_bounded_under_a_polling_dashboard(scenario: Scenario) -> None:
    total = 4000
    wal = scenario.directory / "jobs.db-wal"
    sizes: list[int] = []
    salts: set[bytes] = set()
    halt = threading.Event()

    def sample() -> None:
        while not halt.is_set():
            with contextlib.suppress(OSError), wal.open("rb") as f:
                # The WAL header's salts change each time the log starts over from its
                # beginning (after a complete checkpoint): the file's size only ever shows
                # the high-water mark, the salts show the log was reset, not left to grow.
                header = f.read(32)
                sizes.append(os.fstat(f.fileno()).st_size)
                if len(header) == 32:
                    salts.add(header[16:24])
            halt.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    scenario.pool.start(2, concurrency=8, batch_size=8)
    sampler.start()
    try:
        acks = scenario.directory / "acknowledged.txt"
        errors = scenario.directory / "api-errors.txt"
        api = subprocess.run(
            [sys.executable, str(HERE / "rel_api.py"), str(total), str(acks), str(errors)],
            cwd=HERE, env=scenario.env, capture_output=True, text=True, timeout=120,
            check=False,
        )
        assert api.returncode == 0, api.stdout + api.stderr
        assert errors.read_text() == ""
        scenario.wait_all_terminal(90)
    finally:
        halt.set()
        sampler.join(5)
    assert sizes, "the WAL file was never seen"
    largest = max(sizes)
    # Past the limit the next checkpoint (within 200 commits) restarts the log: a little
    # overshoot is allowed, growth beyond it is not.
    assert largest < WAL_LIMIT * 1.25, largest
    assert len(salts) >= 3, f"the WAL was started over {len(salts) - 1} time(s) only"
    assert scenario.states() == {"completed": total}
    print(f"FIGURES R12 wal-growth: {total} jobs, 2 workers, dashboard polling every 20 ms: "
          f"WAL max {largest / 1e6:.2f} MB over {len(sizes)} samples, last "
          f"{sizes[-1] / 1e6:.2f} MB (limit {WAL_LIMIT / 1e6:.0f} MB); the log started over "
          f"at least {len(salts) - 1} times")
