"""R11: one SQLite file shared by 4 worker processes and an "API" process that enqueues
concurrently (8 clients, single and batch enqueues) while a dashboard reader polls.

lost = 0; no job claimed twice (one attempt per job, no overlap, no fencing token handed out
twice); "database is locked" reaches neither a client nor a job outcome;
`PRAGMA integrity_check` = ok."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from rel_harness import HERE, Scenario, check, logs_mention

from backburner import JobState

pytestmark = pytest.mark.reliability

JOBS = 6000
WORKERS = 4
LEASE = 5.0  # no process dies here: any second attempt would be a double claim


@pytest.mark.timeout(180)
def test_workers_and_api_share_one_sqlite_file(scenario: Scenario) -> None:
    def registered() -> int:
        # The file exists before the first worker's migrations have created the tables.
        try:
            return int(scenario.query("SELECT count(*) FROM backburner_workers")[0][0])
        except sqlite3.OperationalError:
            return 0

    acks = scenario.directory / "acknowledged.txt"
    errors = scenario.directory / "api-errors.txt"
    api_log = scenario.directory / "api.log"
    # Workers first, with small claim batches: as many write transactions as possible.
    scenario.pool.start(WORKERS, concurrency=4, lease=LEASE, batch_size=4)
    scenario.wait_for(lambda: registered() == WORKERS, 20, "the workers to register")
    started = time.monotonic()
    with api_log.open("wb") as log:
        api = subprocess.Popen(
            [sys.executable, str(HERE / "rel_api.py"), str(JOBS), str(acks), str(errors)],
            cwd=HERE, env=scenario.env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        api_code = api.wait(120)
    finally:
        if api.poll() is None:
            api.kill()
            api.wait(10)
    enqueue_took = time.monotonic() - started
    assert api_code == 0, api_log.read_text()
    client_errors = errors.read_text()
    assert client_errors == "", client_errors
    acknowledged = acks.read_text().split()
    assert len(acknowledged) == len(set(acknowledged)) == JOBS

    scenario.wait_all_terminal(120)
    drained = time.monotonic() - started
    codes = scenario.pool.stop_all()
    assert set(codes.values()) == {0}, scenario.pool.logs()[-5000:]

    records = scenario.records(acknowledged)
    history = scenario.history()
    verdict = check(history, records, died={})
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.double_claims == [] and verdict.overlaps == [], verdict.summary()
    assert verdict.duplicates == 0 and verdict.stale_writes == [], verdict.summary()
    reruns = {j: r.attempt for j, r in records.items() if r is not None and r.attempt != 1}
    assert reruns == {}, f"jobs claimed more than once with no worker dying: {reruns}"
    assert all(len(history.of(j)) == 1 for j in acknowledged)
    (total,) = scenario.query("SELECT count(*) FROM backburner_jobs")
    assert total[0] == JOBS, "every stored job was acknowledged to a client"

    outcomes = [
        f"{e.type} {e.message}" for r in records.values() if r is not None for e in r.errors
    ] + [str(r.result) for r in records.values() if r is not None]
    assert not [o for o in outcomes if "locked" in o.lower()]
    assert all(r is not None and r.state is JobState.COMPLETED for r in records.values())
    (integrity,) = scenario.query("PRAGMA integrity_check")
    assert integrity == ("ok",)
    (mode,) = scenario.query("PRAGMA journal_mode")
    assert mode == ("wal",)
    locked_in_logs = logs_mention(scenario.pool, "locked", "busy")
    per_worker = sorted(
        sum(1 for j in acknowledged for a in history.of(j) if a.pid == w.pid)
        for w in scenario.pool.workers
    )
    print(f"FIGURES R11: jobs={JOBS} workers={WORKERS} api_clients=8+dashboard "
          f"enqueue_took={enqueue_took:.1f}s drained_after={drained:.1f}s "
          f"jobs_per_worker={per_worker} client_errors=0 locked_in_outcomes=0 "
          f"locked_or_busy_lines_in_worker_logs={len(locked_in_logs)} "
          f"integrity_check=ok {verdict.summary()}")
