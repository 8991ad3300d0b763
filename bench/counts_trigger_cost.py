"""What the counting triggers (SQLite migration 10, PostgreSQL 9, MySQL 2) cost the hot path:
the same store-level work (insert, claim, complete, in batches) on a fresh store with its
triggers, and on one whose triggers were dropped, alternating, best of --rounds. Store calls
only (no worker, no task code), one process, so the difference is the triggers' own.

    .venv/bin/python bench/counts_trigger_cost.py sqlite
    .venv/bin/python bench/counts_trigger_cost.py postgres
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
import uuid

from backburner.backends import open_backend
from backburner.backends.protocol import Backend, Completion, NewJob

TRIGGERS = {
    "sqlite": ["backburner_jobs_count_insert", "backburner_jobs_count_update",
               "backburner_jobs_count_delete"],
    "postgres": ["jobs_count_insert", "jobs_count_update", "jobs_count_delete"],
}


async def drop_triggers(kind: str, store: Backend) -> None:
    if kind == "sqlite":
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        for name in TRIGGERS[kind]:
            conn.execute(f"DROP TRIGGER {name}")
        conn.commit()
        conn.close()
        return
    pool = store._pool  # type: ignore[attr-defined]
    schema = store.config.quoted_schema  # type: ignore[attr-defined]
    for name in TRIGGERS[kind]:
        await pool.execute(f"DROP TRIGGER {name} ON {schema}.jobs")


async def work(store: Backend, jobs: int, batch: int) -> float:
    began = time.perf_counter()
    for _ in range(jobs // batch):
        await store.insert([NewJob(id=uuid.uuid4().hex, task="t", queue="q", priority=0,
                                   args="[]", kwargs="{}", max_attempts=1)
                            for _ in range(batch)])
        claim = await store.claim("w", ["q"], batch, 60.0)
        await store.complete([Completion(j.id, j.attempt, "null") for j in claim.jobs])
    return time.perf_counter() - began


async def once(kind: str, triggers: bool, jobs: int, batch: int) -> float:
    url = (f"sqlite:///{tempfile.mkdtemp()}/c.db" if kind == "sqlite" else
           f"postgresql://postgres@127.0.0.1:5432/test?schema=bench_cost_{uuid.uuid4().hex[:8]}")
    store = open_backend(url)
    await store.open()
    try:
        if not triggers:
            await drop_triggers(kind, store)
        return await work(store, jobs, batch)
    finally:
        destroy = getattr(store, "destroy", None)
        if destroy is not None:
            await destroy()
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(TRIGGERS))
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    best = {True: float("inf"), False: float("inf")}
    for round_ in range(args.rounds):
        # Each round in the other order, so a drift of the machine hits both alike.
        for triggers in ((True, False) if round_ % 2 == 0 else (False, True)):
            best[triggers] = min(best[triggers], await once(args.kind, triggers, args.jobs,
                                                            args.batch))
    per_job = {k: v / args.jobs * 1e6 for k, v in best.items()}
    print(f"{args.kind}: {args.jobs} jobs inserted, claimed and completed in batches of "
          f"{args.batch}, best of {args.rounds}: with triggers {per_job[True]:.1f} us/job, "
          f"without {per_job[False]:.1f} us/job ({per_job[True] / per_job[False]:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
