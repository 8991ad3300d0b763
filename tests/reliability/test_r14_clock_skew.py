"""R14: clock skew. Two real worker processes, one whose wall clock is 10 minutes ahead and
one 10 minutes behind (`clock_skew` shifts `time.time`/`time.time_ns` in the child before
backburner is imported), share one Redis or PostgreSQL store. Leases, due times and tick
times come from the store's clock, so, judged by the store's own records:

(a) a job held for several lease periods while heartbeating, with the other worker free to
    take it, is never taken: one attempt, no loss, every progress write accepted. And a
    lease does expire when it should: the worker 10 minutes ahead is SIGKILLed while it
    holds a job, and the one 10 minutes behind takes it back and runs it again;
(b) jobs enqueued with `options(delay=...)` of a few seconds, taken by both workers, never
    start before their `run_at` (`started_at >= run_at`, both stamped by the store);
(c) the 1 s periodic schedule both schedulers run (one alone first, both, then the other
    alone) has every tick of the run enqueued exactly once, none missing, none enqueued
    before its instant, by the store's clock; job ids carry the inserting process's clock,
    which shows that both skewed schedulers inserted ticks.

SQLite is not run: its clock is the local machine's (`time.time()` of each process using the
file), and the processes sharing a file run on one machine, so they share one clock; skewing
one process's clock on purpose would only test a setup that cannot occur.

`time.monotonic` is not skewed and backburner uses it for durations only (sleeps between
rounds, run times). `datetime.now()` cannot be skewed from Python: the source scan below
keeps it out of everything but the spots listed, which decide nothing about leases, due times
or ticks.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pytest
import r14_app
from rel_harness import Attempt, History, Scenario, WorkerProcess, check
from services import SERVER_BACKENDS

from backburner import Backburner, FailureReason, JobRecord, JobState
from backburner.backends.protocol import JobFilter

pytestmark = pytest.mark.reliability

T = TypeVar("T")
SRC = Path(__file__).resolve().parents[2] / "src" / "backburner"
SKEW = 600.0
LEASE = 1.5
HELD_FOR = 4 * LEASE
"""How long both long jobs run, at least, while the other worker has a free slot."""
DELAYS = (2.0, 4.0)
"""Each for a pair of jobs: each worker has one free slot, so each takes one of a pair."""
NAP = 1.5
"""Seconds a delayed job runs: far longer than the other worker takes to claim its twin."""


class RealClock:
    """The test process's (unskewed) wall clock at a monotonic instant; CLOCK_MONOTONIC is
    system-wide, so this maps the history's stamps of every process to real time."""

    def __init__(self) -> None:
        self.wall, self.mono = time.time(), time.monotonic()

    def at(self, mono: float) -> float:
        return self.wall + (mono - self.mono)


def with_app(scenario: Scenario, body: Callable[[Backburner], Awaitable[T]]) -> T:
    async def main() -> T:
        async with r14_app.build_app(scenario.url) as app:
            return await body(app)

    return asyncio.run(main())


def started(history: History, job_id: str) -> Attempt | None:
    attempts = history.of(job_id)
    return attempts[0] if attempts else None


def completed(scenario: Scenario, ids: list[str]) -> bool:
    return all(r is not None and r.is_terminal for r in scenario.records(ids).values())


def stamp(value: datetime | None) -> float:
    assert value is not None
    return value.timestamp()


def id_clock(job_id: str) -> float:
    """The wall clock (seconds) of the process that made a job id (UUIDv7: ms in 48 bits)."""
    return (int(job_id.replace("-", ""), 16) >> 80) / 1000


def start_worker(scenario: Scenario, skew: float, concurrency: int) -> WorkerProcess:
    (worker,) = scenario.pool.start(
        1, app="r14_app:app", skew=skew, concurrency=concurrency, lease=LEASE, queue="default"
    )
    return worker


async def tick_jobs(app: Backburner) -> list[JobRecord]:
    jobs: list[JobRecord] = []
    cursor = None
    while True:
        page = await app.backend.list_jobs(JobFilter(task=r14_app.TICK_TASK), 1000, cursor)
        jobs += page.jobs
        cursor = page.next_cursor
        if cursor is None:
            return jobs


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", SERVER_BACKENDS, indirect=True)
def test_workers_ten_minutes_off_either_way(scenario: Scenario) -> None:
    real = RealClock()
    pool = scenario.pool
    hold_marker = scenario.directory / "release-hold"
    long_marker = scenario.directory / "release-long"

    async def enqueue_first(app: Backburner) -> tuple[str, str, str]:
        long_1 = await app.get_task("r14.hold").enqueue(str(long_marker), True)
        victim = await app.get_task("rel.nap").enqueue(60.0, 0.05)
        filler = await app.get_task("r14.hold").enqueue(str(hold_marker), False)
        return long_1.id, victim.id, filler.id

    # The worker ahead takes all three (3 slots): the long job, the victim, and a filler
    # that keeps it full until the worker behind has taken the second long job.
    long_1, victim, filler = with_app(scenario, enqueue_first)
    ahead = start_worker(scenario, +SKEW, concurrency=3)
    scenario.wait_for(
        lambda: all(started(scenario.history(), j) for j in (long_1, victim, filler)),
        30, "the worker ahead to start its three jobs",
    )
    ahead_claimed = time.monotonic()

    async def enqueue_second(app: Backburner) -> str:
        return (await app.get_task("r14.hold").enqueue(str(long_marker), True)).id

    long_2 = with_app(scenario, enqueue_second)
    behind = start_worker(scenario, -SKEW, concurrency=2)
    scenario.wait_for(lambda: started(scenario.history(), long_2) is not None, 30,
                      "the worker behind to start the second long job")
    both_held = time.monotonic()
    # From here on each worker holds one long job and has exactly one free slot, from which
    # it would take the other's long job if that lease expired early.
    hold_marker.touch()

    async def enqueue_delayed(app: Backburner) -> list[str]:
        nap = app.get_task("rel.nap")
        return [
            (await nap.options(delay=delay).enqueue(NAP, 0.05)).id
            for delay in DELAYS for _ in range(2)
        ]

    before_delayed = time.monotonic()
    delayed = with_app(scenario, enqueue_delayed)
    scenario.wait_for(lambda: completed(scenario, [filler, *delayed]), 30,
                      "the filler and the delayed jobs to complete")
    time.sleep(max(0.0, both_held + HELD_FOR - time.monotonic()))
    long_marker.touch()
    scenario.wait_for(lambda: completed(scenario, [long_1, long_2]), 20,
                      "the long jobs to complete")

    # The worker ahead dies holding the victim: its lease must expire by the store's clock
    # and the worker behind (alone from now on) run it again.
    pool.kill(ahead)
    killed = pool.killed[ahead.pid]
    scenario.wait_for(lambda: completed(scenario, [victim]), 30,
                      "the victim to be taken back and run again")
    time.sleep(max(0.0, killed + 3.0 - time.monotonic()))  # the worker behind alone: 3 ticks
    behind_stopping = time.monotonic()
    codes = pool.stop_all()
    assert codes[behind.pid] == 0, pool.logs()

    history = scenario.history()
    ids = [long_1, long_2, victim, filler, *delayed]
    records = scenario.records(ids)
    verdict = check(history, records, died=pool.killed)
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.overlaps == [] and verdict.stale_writes == [], verdict.summary()
    assert verdict.double_claims == [] and verdict.unexplained_reruns == [], verdict.summary()

    # The skew is real: each worker's history stamps its wall clock, 10 minutes off.
    for worker, skew in ((ahead, SKEW), (behind, -SKEW)):
        seen = [a for per_job in history.attempts.values() for a in per_job.values()
                if a.pid == worker.pid]
        assert seen and all(abs(a.start_wall - real.at(a.start) - skew) < 2 for a in seen)

    # (a) Held well past several leases, heartbeating, the other worker free: one attempt.
    for job_id, holder in ((long_1, ahead), (long_2, behind)):
        rec = records[job_id]
        assert rec is not None and rec.state is JobState.COMPLETED, rec
        (only,) = history.of(job_id)  # no steal: exactly one attempt
        assert only.pid == holder.pid and only.outcome == "ok", only
        assert only.end is not None and only.end - both_held >= HELD_FOR
        assert only.writes and all(w.ok for w in only.writes), "progress refused: lease lost"
        assert rec.attempt == 1 and rec.lost == 0 and rec.errors == (), rec
        assert rec.result == {"attempt": 1, "pid": holder.pid}
    # ...and a dead worker's lease still expires: the victim ran again on the other worker.
    rec = records[victim]
    assert rec is not None and rec.state is JobState.COMPLETED, rec
    first, second = history.of(victim)
    assert first.pid == ahead.pid and first.end is None and second.pid == behind.pid
    assert second.start > killed, "taken back only after its worker died"
    assert rec.attempt == 2 and rec.lost == 1
    assert [(e.attempt, e.reason) for e in rec.errors] == [(1, FailureReason.WORKER_LOST)]

    # (b) Delayed jobs: never started before run_at by the store's clock, on both workers.
    runners = set()
    for job_id, delay in zip(delayed, [d for d in DELAYS for _ in range(2)], strict=True):
        rec = records[job_id]
        assert rec is not None and rec.state is JobState.COMPLETED, rec
        assert stamp(rec.run_at) - stamp(rec.created_at) == pytest.approx(delay, abs=0.01)
        assert stamp(rec.started_at) >= stamp(rec.run_at), rec
        (only,) = history.of(job_id)
        # Nor early in real time (the monotonic clock): a lower bound only.
        assert only.start - before_delayed >= delay - 0.05, (job_id, delay)
        runners.add(only.pid)
    assert runners == {ahead.pid, behind.pid}, "each worker should have taken delayed jobs"

    # (c) Ticks: each enqueued once, none missing, none early, by the store's clock.
    ticks = with_app(scenario, tick_jobs)
    keys = Counter(str(job.unique_key) for job in ticks)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:5]
    at = {job.id: datetime.fromisoformat(str(job.unique_key).split("@", 1)[1]).timestamp()
          for job in ticks}
    instants = sorted(at.values())
    missing = sorted(set(range(int(instants[0]), int(instants[-1]) + 1)) - set(map(int, instants)))
    assert missing == [], f"{len(missing)} ticks never enqueued, first {missing[:5]}"
    # Every second from when the worker ahead ran (its scheduler starts with it) to the
    # stop of the worker behind, less a generous margin for a scheduler's first round.
    expected = range(int(real.at(ahead_claimed)) + 2, int(real.at(behind_stopping)) - 1)
    absent = sorted(set(expected) - set(map(int, instants)))
    assert absent == [], f"{len(absent)} ticks of the run never enqueued, first {absent[:5]}"
    inserted_by: dict[str, float] = {}
    for job in ticks:
        created = stamp(job.created_at)
        assert created >= at[job.id], f"tick {job.unique_key} enqueued early at {created}"
        assert created - at[job.id] < 5, f"tick {job.unique_key} enqueued late at {created}"
        inserted_by[job.id] = id_clock(job.id) - created
    assert all(min(abs(s - SKEW), abs(s + SKEW)) < 2 for s in inserted_by.values()), inserted_by
    # The worker ahead ran alone at first, the worker behind alone at the end: both inserted.
    assert any(s > 0 for s in inserted_by.values()) and any(s < 0 for s in inserted_by.values())
    after_kill = [j for j in ticks if at[j.id] >= real.at(killed) + 1]
    assert after_kill and all(inserted_by[j.id] < 0 for j in after_kill)

    held = min(a.end for j in (long_1, long_2) for a in history.of(j) if a.end) - both_held
    split = Counter("ahead" if s > 0 else "behind" for s in inserted_by.values())
    print(
        f"FIGURES R14 {scenario.kind}: skew=+/-{SKEW:.0f}s lease={LEASE}s long_jobs=2 "
        f"held={held:.1f}s attempts_each=1 steals=0 "
        f"victim_rerun_after={second.start - killed:.2f}s delayed={len(delayed)} early=0 "
        f"ticks={len(ticks)} doubled=0 missed=0 inserted_by={dict(split)} {verdict.summary()}"
    )


# -- what cannot be skewed -----------------------------------------------------------------

ALLOWED_NOW: dict[str, int] = {
    # Cron syntax check at definition, and the human description: no tick time comes from it.
    "schedule.py": 2,
    # The title bar of `backburner top`: display only.
    "cli_ops.py": 1,
}


def test_backburner_reads_the_wall_clock_only_where_a_skew_can_reach_it() -> None:
    """The R14 workers skew `time.time`/`time.time_ns` before backburner is imported (so a
    `from time import time` would get the skewed one too); a wall-clock read through
    another door (`datetime.now()`, `time.clock_gettime`) would escape the test, so every
    one is listed here with the reason it does not matter."""
    found: dict[str, int] = {}
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        count = len(re.findall(r"\b(?:datetime|date)\.(?:now|utcnow|today)\(|clock_gettime", text))
        if count:
            found[path.name] = found.get(path.name, 0) + count
    assert found == ALLOWED_NOW, found
