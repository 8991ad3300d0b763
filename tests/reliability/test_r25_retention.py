"""R25 at CI size: under a constant load of short jobs, with a tiny retention, storage stays
flat on every backend. A producer enqueues ~100 jobs/s for 6 s while a worker runs them and,
as housekeeping leader, prunes what finished more than half a second ago; the store's size
(rows; on Redis keys, directory entries and index entries) is sampled every half second and
must stop growing once the first jobs age out, while thousands of jobs went through."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import pytest

from backburner import Backburner, JobState, Retention
from backburner.backends.memory import MemoryBackend
from backburner.backends.mysql import MySQLBackend
from backburner.backends.mysql.connections import single
from backburner.backends.protocol import Backend
from backburner.backends.sqlite import SQLiteBackend

pytestmark = pytest.mark.reliability

RUN = 6.0
RATE = 100
"""Jobs enqueued per second."""
RETENTION = 0.5


async def stored(backend: Backend) -> int:
    """What the store holds for jobs: rows, or on Redis every key, directory entry and index
    entry under the backend's prefix (a leak in any of them shows)."""
    if isinstance(backend, MemoryBackend):
        return len(backend._rows)
    if isinstance(backend, SQLiteBackend):
        with sqlite3.connect(backend.path) as conn:
            return int(conn.execute("SELECT count(*) FROM backburner_jobs").fetchone()[0])
    if isinstance(backend, MySQLBackend):
        (found,) = await single(backend._pool, (
            f"SELECT COUNT(*) AS n FROM {backend.config.quoted_database}.backburner_jobs", ()))
        return int(found.rows[0]["n"])
    pool: Any = getattr(backend, "_pool", None)
    if pool is not None:  # PostgreSQL
        schema = backend.config.quoted_schema  # type: ignore[attr-defined]
        return int(await pool.fetchval(f"SELECT count(*) FROM {schema}.jobs"))
    client: Any = backend._client  # type: ignore[attr-defined]
    keys = backend.keys  # type: ignore[attr-defined]
    total = int(await client.hlen(keys.directory))
    async for key in client.scan_iter(match=keys.scan_pattern, count=1000):
        if not keys.owns(key):
            continue
        total += 1
        if await client.type(key) == "zset":
            total += int(await client.zcard(key))
    return total


@pytest.mark.timeout(90)
async def test_storage_stays_flat_under_constant_load(backend: Backend) -> None:
    app = Backburner(backend=backend, poll_interval=0.2, retention=Retention(
        completed=RETENTION, failed=RETENTION, cancelled=RETENTION, interval=0.25))

    @app.task(retries=0)
    async def short(n: int) -> int:
        return n

    worker = app.worker(concurrency=20, rescue_interval=0.2, scheduler=False)
    running = asyncio.create_task(worker.run())
    samples: list[tuple[float, int]] = []
    enqueued = 0
    started = time.monotonic()
    try:
        next_sample = started
        while (elapsed := time.monotonic() - started) < RUN:
            due = int(elapsed * RATE) - enqueued
            if due > 0:
                await short.enqueue_many([short.call(enqueued + i) for i in range(due)])
                enqueued += due
            if time.monotonic() >= next_sample:
                samples.append((time.monotonic() - started, await stored(backend)))
                next_sample += 0.5
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await running

    counts = await backend.counts()
    pruned = enqueued - sum(counts.values())
    print(f"\nR25 {type(backend).__name__}: {enqueued} enqueued, {pruned} pruned, "
          f"{worker.processed} processed; storage samples {[n for _, n in samples]}")
    assert worker.processed >= enqueued * 0.8, (worker.processed, enqueued)
    assert not counts.get(("default", JobState.FAILED))
    # Flat: after the first two seconds (jobs age out, the leader's first prunes), the store
    # never holds more than it did then by more than a margin, although three quarters of
    # the load arrived since. Without pruning it would have grown fourfold.
    settled = max(n for t, n in samples if t < 2.0)
    later = [n for t, n in samples if t >= 2.0]
    assert max(later) <= settled * 1.5 + 50, samples
    assert pruned >= enqueued * 0.5, (pruned, enqueued)
