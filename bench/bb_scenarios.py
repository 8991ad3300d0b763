"""Backburner scenarios. Each one builds its app on a fresh database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bb_app import make_app
from common import collect, fresh_db, spawn, stop, wal_bytes

WARMUP = 20
"""Latency round trips not counted: the first ones bind sockets and warm statement caches."""


@dataclass(frozen=True)
class Throughput:
    jobs: int
    seconds: float
    wal_bytes: int
    """Size of the WAL file when the scenario ended (before the last connection closed):
    a WAL that is never checkpointed back to the start grows, and every commit slows down."""

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


@dataclass(frozen=True)
class DrainResult(Throughput):
    span: float
    """First claim to last completion, from the job rows' own timestamps (cross-check of the
    worker's own timing)."""
    worker: dict[str, Any]

    @property
    def span_rate(self) -> float:
        return self.jobs / self.span


async def enqueue_one_by_one(jobs: int) -> Throughput:
    """`await task.enqueue()` in a loop: one transaction per job."""
    with fresh_db("enqueue") as db:
        bench = make_app(db)
        await bench.app.open()  # connecting and migrating is not enqueueing
        started = time.perf_counter()
        for _ in range(jobs):
            await bench.noop.enqueue()
        seconds = time.perf_counter() - started
        wal = wal_bytes(db)
        await bench.app.close()
    return Throughput(jobs, seconds, wal)


async def enqueue_many(jobs: int, batch: int) -> Throughput:
    """`enqueue_many` with `batch` jobs per call (one transaction per call)."""
    with fresh_db("enqueue-many") as db:
        bench = make_app(db)
        await bench.app.open()
        started = time.perf_counter()
        await _fill(bench.noop, jobs, batch)
        seconds = time.perf_counter() - started
        wal = wal_bytes(db)
        await bench.app.close()
    return Throughput(jobs, seconds, wal)


async def _fill(noop: Any, jobs: int, batch: int) -> None:
    for start in range(0, jobs, batch):
        await noop.enqueue_many([() for _ in range(min(batch, jobs - start))])


def drain(jobs: int, concurrency: int, loop: str, profile: str | None = None) -> DrainResult:
    """Queue `jobs` no-ops, then let one burst worker process empty the queue."""
    with fresh_db("drain") as db:
        asyncio.run(_prefill(db, jobs))
        args = ["--db", str(db), "--mode", "drain", "--concurrency", str(concurrency),
                "--loop", loop]
        if profile:
            args += ["--profile", profile]
        report = collect(spawn("bb_worker.py", *args))
        completed, span = _completed_span(db)
    if completed != jobs:
        raise RuntimeError(f"drain: {completed} of {jobs} jobs completed")
    return DrainResult(jobs, report["seconds"], report["wal_bytes"], span, report)


async def _prefill(db: Path, jobs: int) -> None:
    bench = make_app(db)
    async with bench.app:
        await _fill(bench.noop, jobs, 1000)


def _completed_span(db: Path) -> tuple[int, float]:
    conn = sqlite3.connect(db)
    try:
        count, first, last = conn.execute(
            "SELECT count(*), min(started_at), max(finished_at) FROM backburner_jobs "
            "WHERE state = 'completed'"
        ).fetchone()
    finally:
        conn.close()
    return count, (last - first) if count else float("nan")


async def latency_in_process(samples: int, concurrency: int) -> list[float]:
    """Seconds from `enqueue()` to `await job.result()` returning, worker in this process."""
    with fresh_db("latency-local") as db:
        bench = make_app(db)
        await bench.app.open()
        worker = bench.app.worker(concurrency=concurrency, handle_signals=False)
        running = asyncio.create_task(worker.run())
        try:
            timings = await _round_trips(bench.noop, samples)
        finally:
            worker.stop()
            await running
            await bench.app.close()
    return timings


async def latency_cross_process(samples: int, concurrency: int, loop: str) -> list[float]:
    """Same, with the worker in another process (woken through datagram notifications)."""
    with fresh_db("latency-remote") as db:
        bench = make_app(db)
        await bench.app.open()  # create the schema before the worker starts
        proc = spawn("bb_worker.py", "--db", str(db), "--mode", "serve",
                     "--concurrency", str(concurrency), "--loop", loop)
        try:
            # A generous first wait covers the child's start-up; later ones are strict.
            first = await bench.noop.enqueue()
            await first.result(timeout=60)
            timings = await _round_trips(bench.noop, samples)
        finally:
            report = stop(proc)
            await bench.app.close()
    if report["processed"] != samples + WARMUP + 1:
        raise RuntimeError(f"latency: worker processed {report['processed']} jobs")
    return timings


async def _round_trips(noop: Any, samples: int) -> list[float]:
    timings = []
    for n in range(WARMUP + samples):
        started = time.perf_counter()
        job = await noop.enqueue()
        await job.result(timeout=5)
        if n >= WARMUP:
            timings.append(time.perf_counter() - started)
    return timings
