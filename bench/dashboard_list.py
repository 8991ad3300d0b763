"""How fast the dashboard's pages answer over a large backlog (R25: "dashboard list p99 stays
flat with the backlog"; issue 6: "paginated so it stays fast with a million jobs").

Fills a fresh SQLite file and a PostgreSQL schema of its own (dropped afterwards) with N jobs
(default 1,000,000) through the backend's own `insert` in big batches, then spreads them
over mixed states and over the last two hours with one UPDATE (a bench shortcut: running a
million jobs through a worker would take many minutes and measure the worker, not the
dashboard). Then times the pages through httpx against the ASGI app, in process:

- the jobs list (first page), a state filter (failed), a task filter, a deep cursor page
  (half-way down), a task no job has, a search, the failures page, the overview (default
  settings: a fresh sample at most every 5 s), and the overview's sample of the store alone
  (20 times: counts per queue and state, workers, the newest finished jobs).

Each page is requested `--requests` times after 3 warm-up requests; p50/p99 in ms.

    .venv/bin/python bench/dashboard_list.py [--jobs 1000000] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2
from fastapi import FastAPI

from backburner import Backburner
from backburner.backends.protocol import NewJob
from backburner.dashboard import mount_dashboard
from backburner.dashboard.samples import Sampler
from backburner.ids import new_job_id

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
TASKS = ("shop.order", "mail.send", "report.build", "image.resize")
"""Task names cycled over the jobs; `report.build` is 1 in 4 of them."""
QUEUES = ("default", "mail")
BATCH = 10_000
SPAN = 2 * 3600.0
"""Seconds the created_at times are spread over, ending now."""

# One UPDATE per backend gives each job a state by its position (seq % 100): 70% completed,
# 10% failed, 5% cancelled, 10% pending, 4% scheduled (in the future), 1% running.
STATE_CASE = """CASE
    WHEN seq % 100 < 70 THEN 'completed' WHEN seq % 100 < 80 THEN 'failed'
    WHEN seq % 100 < 85 THEN 'cancelled' WHEN seq % 100 < 95 THEN 'pending'
    WHEN seq % 100 < 99 THEN 'scheduled' ELSE 'running' END"""


def new_jobs(count: int, start: int) -> list[NewJob]:
    return [NewJob(id=new_job_id(), task=TASKS[i % len(TASKS)],
                   queue=QUEUES[1 if i % 7 == 0 else 0], priority=0, args=f"[{i}]",
                   kwargs='{"note": "bench"}', max_attempts=3)
            for i in range(start, start + count)]


async def fill(app: Backburner, total: int) -> float:
    began = time.perf_counter()
    done = 0
    while done < total:
        size = min(BATCH, total - done)
        await app.backend.insert(new_jobs(size, done))
        done += size
    return time.perf_counter() - began


def spread_sqlite(path: Path, total: int) -> None:
    now = time.time()
    with sqlite3.connect(path) as conn:
        # Times only grow with seq, as in a real store (created_at follows insertion order).
        conn.execute(f"""
            UPDATE backburner_jobs SET
                state = {STATE_CASE},
                created_at = :now - :span + seq * :step,
                run_at = :now - :span + seq * :step + 0.05
            """, {"now": now, "span": SPAN, "step": SPAN / total})
        conn.execute("""
            UPDATE backburner_jobs SET attempt = 1, worker_id = 'bench-worker',
                started_at = run_at + 0.2, updated_at = run_at + 0.2
            WHERE state IN ('completed', 'failed', 'running')""")
        conn.execute("""
            UPDATE backburner_jobs SET finished_at = started_at + 0.5,
                updated_at = started_at + 0.5, result = '{"ok": true}'
            WHERE state = 'completed'""")
        conn.execute("""
            UPDATE backburner_jobs SET finished_at = started_at + 0.5,
                updated_at = started_at + 0.5, reason = 'error',
                errors = '[{"attempt": 1, "type": "ValueError", "message": "card declined",
                            "traceback": "", "reason": "error", "at": 0}]'
            WHERE state = 'failed'""")
        conn.execute("""
            UPDATE backburner_jobs SET finished_at = created_at + 1, reason = 'cancelled'
            WHERE state = 'cancelled'""")
        conn.execute("UPDATE backburner_jobs SET run_at = :later WHERE state = 'scheduled'",
                     {"later": now + 3600})
        conn.execute("ANALYZE")


async def spread_postgres(schema: str, total: int) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(PG_DSN)
    try:
        t = f'"{schema}".jobs'
        await conn.execute(f"""
            UPDATE {t} SET state = {STATE_CASE},
                created_at = now() - make_interval(secs => $1) + make_interval(secs => seq * $2),
                run_at = now() - make_interval(secs => $1)
                         + make_interval(secs => seq * $2 + 0.05)
            """, SPAN, SPAN / total)
        await conn.execute(f"""
            UPDATE {t} SET attempt = 1, worker_id = 'bench-worker',
                started_at = run_at + interval '0.2 s', updated_at = run_at + interval '0.2 s'
            WHERE state IN ('completed', 'failed', 'running')""")
        await conn.execute(f"""
            UPDATE {t} SET finished_at = started_at + interval '0.5 s',
                updated_at = started_at + interval '0.5 s', result = '{{"ok": true}}'
            WHERE state = 'completed'""")
        await conn.execute(f"""
            UPDATE {t} SET finished_at = started_at + interval '0.5 s',
                updated_at = started_at + interval '0.5 s', reason = 'error',
                errors = '[{{"attempt": 1, "type": "ValueError", "message": "card declined",
                            "traceback": "", "reason": "error", "at": 0}}]'::jsonb
            WHERE state = 'failed'""")
        await conn.execute(f"""
            UPDATE {t} SET finished_at = created_at + interval '1 s', reason = 'cancelled'
            WHERE state = 'cancelled'""")
        await conn.execute(
            f"UPDATE {t} SET run_at = now() + interval '1 hour' WHERE state = 'scheduled'")
        await conn.execute(f"VACUUM ANALYZE {t}")
    finally:
        await conn.close()


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def time_pages(
    app: Backburner, total: int, requests: int
) -> list[tuple[str, float, float]]:
    api = FastAPI()
    # Default settings: the overview samples the store at most every 5 s, or 20 times as
    # long as a sample took (its p99 is the request that took one); the sample alone is
    # timed below.
    mount_dashboard(api, app)
    deep = str(total // 2)
    pages = [
        ("jobs, first page", "/dashboard/jobs"),
        ("jobs, state=failed", "/dashboard/jobs?state=failed"),
        ("jobs, task=report.build", "/dashboard/jobs?task=report.build"),
        ("jobs, deep cursor (half-way)", f"/dashboard/jobs?cursor={deep}"),
        ("jobs, task with no jobs (walks every row)", "/dashboard/jobs?task=none.such"),
        ("jobs, search q=declined (a bounded window)", "/dashboard/jobs?q=declined"),
        ("failures (groups the newest 10,000 failed)", "/dashboard/failures"),
        ("overview", "/dashboard/"),
    ]
    rows = []
    transport = httpx2.ASGITransport(app=api)
    async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
        for label, path in pages:
            times = []
            for i in range(requests + 3):
                began = time.perf_counter()
                response = await client.get(path)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}")
                if i >= 3:
                    times.append(elapsed)
            rows.append((label, statistics.median(times), percentile(times, 0.99)))
    sampler = Sampler(app)
    times = []
    for i in range(min(requests, 20) + 1):
        began = time.perf_counter()
        await sampler._take()
        if i:
            times.append((time.perf_counter() - began) * 1000)
    rows.append(("overview sample alone (counts, workers, newest finished)",
                 statistics.median(times), percentile(times, 0.99)))
    return rows


async def run_backend(kind: str, total: int, requests: int, tmp: Path) -> list[str]:
    schema = f"bench_dash_{int(time.time())}"
    url = f"sqlite:///{tmp / 'dash.db'}" if kind == "sqlite" else f"{PG_DSN}?schema={schema}"
    app = Backburner(url)
    try:
        await app.open()
        filled = await fill(app, total)
        began = time.perf_counter()
        if kind == "sqlite":
            await asyncio.to_thread(spread_sqlite, tmp / "dash.db", total)
        else:
            await spread_postgres(schema, total)
        spread = time.perf_counter() - began
        print(f"{kind}: inserted {total:,} jobs in {filled:.1f}s "
              f"({total / filled:,.0f}/s), states spread in {spread:.1f}s", flush=True)
        rows = await time_pages(app, total, requests)
    finally:
        await app.close()
        if kind == "postgres":
            await drop_schema(schema)
    lines = [f"| {kind} | {label} | {p50:.1f} | {p99:.1f} |" for label, p50, p99 in rows]
    for line in lines:
        print(line, flush=True)
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgres")
    options = parser.parse_args()
    lines = ["| backend | page | p50 ms | p99 ms |", "|---|---|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="bb-dash-bench-") as tmp:
        for kind in options.backends.split(","):
            lines += await run_backend(kind.strip(), options.jobs, options.requests, Path(tmp))
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
