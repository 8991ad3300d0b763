"""What a metrics scrape, `backburner info` and `healthcheck` cost against a big store.

Fills a fresh store with --jobs jobs (inserted through the backend in batches, then most
moved to completed and some to failed / scheduled by one SQL statement each, so the counts
are spread like a real store's: mostly finished jobs, a backlog), then times the store
reads those commands make, best of --rounds:

    .venv/bin/python bench/metrics_at_scale.py sqlite:///tmp/big.db --jobs 1000000
    .venv/bin/python bench/metrics_at_scale.py postgresql://postgres@127.0.0.1/test?schema=bench_metrics

The store is destroyed afterwards (a SQLite file is left; KEEP=1 keeps any store, and
--jobs 0 then times the reads again on it, e.g. after an upgrade). Prints one line per
read: milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from backburner.app import Backburner
from backburner.backends.protocol import BacklogReads, JobFilter, NewJob
from backburner.job import JobState
from backburner.metrics import JobMetrics

SPREAD = "UPDATE backburner_jobs SET state = {state} WHERE {pick}"


async def fill(app: Backburner, jobs: int) -> None:
    batch = 10_000
    queues = ["default", "emails", "reports"]
    for start in range(0, jobs, batch):
        await app.backend.insert([
            NewJob(id=uuid.uuid4().hex, task="noop", queue=queues[i % 3], priority=i % 2,
                   args="[]", kwargs="{}", max_attempts=3)
            for i in range(start, min(jobs, start + batch))
        ])


def spread_sql(url: str) -> list[str]:
    # 1 in 50 stays pending, 1 in 100 fails, 1 in 200 waits (scheduled), the rest completed.
    mod = "(seq % {n}) {op} {v}" if url.startswith("sqlite") else "(mod(seq, {n}) {op} {v})"
    return [
        SPREAD.format(state="'failed'", pick=mod.format(n=100, op="=", v=1)),
        SPREAD.format(state="'scheduled', run_at = run_at + " + (
            "3600" if url.startswith("sqlite") else "interval '1 hour'"),
                      pick=mod.format(n=200, op="=", v=3)),
        SPREAD.format(state="'completed'",
                      pick="state = 'pending' AND " + mod.format(n=50, op="<>", v=0)),
    ]


async def spread(url: str) -> None:
    statements = spread_sql(url)
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for s in statements:
            conn.execute(s)
        conn.commit()
        conn.close()
        return
    conn = await postgres(url)
    try:
        for s in statements:
            await conn.execute(s.replace("backburner_jobs", "jobs"))
        await conn.execute("VACUUM ANALYZE jobs")
    finally:
        await conn.close()


async def postgres(url: str) -> Any:
    """A plain asyncpg connection to the URL's database, its schema first on the path."""
    import asyncpg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p).get("schema", "backburner")
    conn = await asyncpg.connect(base)
    await conn.execute(f'SET search_path TO "{schema}"')
    return conn


FULL_COUNT = "SELECT queue, state, count(*) FROM backburner_jobs GROUP BY queue, state"


async def full_count(url: str) -> None:
    """What counts() did before the stores kept counts (a count of the whole table)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute(FULL_COUNT).fetchall()
        conn.close()
        return
    conn = await postgres(url)
    try:
        await conn.fetch(FULL_COUNT.replace("backburner_jobs", "jobs"))
    finally:
        await conn.close()


async def best(rounds: int, call: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        await call()
        times.append(time.perf_counter() - began)
    return min(times) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    app = Backburner(args.url)
    filled = args.jobs == 0  # --jobs 0: time the reads on a store filled by an earlier run

    @app.task(name="noop")
    async def noop() -> None: ...

    await app.open()
    try:
        began = time.perf_counter()
        if not filled:
            await fill(app, args.jobs)
            await spread(args.url)
            print(f"filled {args.jobs} jobs in {time.perf_counter() - began:.0f} s")
        backend = app.backend
        pending = JobFilter(states=(JobState.PENDING,))
        reads: dict[str, Callable[[], Awaitable[Any]]] = {
            "a full count of the table (counts() before)": lambda: full_count(args.url),
            "counts() (info, overview, depth gauge)": backend.counts,
            "count_jobs(pending) (healthcheck)": lambda: backend.count_jobs(pending),
            "list_workers()": backend.list_workers,
            "a whole /metrics render": JobMetrics.of(app).render,
        }
        if isinstance(backend, BacklogReads):
            reads["oldest_pending()"] = backend.oldest_pending
        counts = await backend.counts()
        print("counts:", {f"{q}/{s.value}": n for (q, s), n in sorted(counts.items())})
        for name, call in reads.items():
            print(f"{name}: {await best(args.rounds, call):.2f} ms")
    finally:
        await app.close()
        destroy = getattr(app.backend, "destroy", None)
        if os.environ.get("KEEP") != "1" and destroy is not None:
            await destroy()  # a SQLite file stays: delete it yourself


if __name__ == "__main__":
    asyncio.run(main())
