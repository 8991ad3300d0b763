"""What one job costs each store, and the capacity model built from it (bench/CAPACITY.md).

    .venv/bin/python bench/capacity.py                 # 5,000 jobs per phase, prints tables
    .venv/bin/python bench/capacity.py --jobs 20000 --write   # also writes bench/CAPACITY.md

For SQLite, Redis and PostgreSQL (the last two as private servers started here, so their
counters hold this run's work only), one app enqueues N no-op jobs one by one, drains them
with one worker, enqueues N more in batches of 100 and drains them again. Around each phase
the store's own counters are read:

- Redis: the server's CPU time (`INFO cpu`, main thread and background threads), commands
  (`INFO commandstats`), bytes in and out;
- PostgreSQL: the CPU time of the postmaster and its backends (/proc), statement time and
  calls (`pg_stat_statements`), WAL bytes (the WAL insert position), commits
  (`pg_stat_database`, read once the backends have published them);
- SQLite: the bytes the process wrote to storage (/proc/self/io) in 4 KiB pages;
- every store: the benchmark process's own CPU time (the client side: enqueuer and worker).

CPU *time* is counted, not elapsed time, so the per-job costs hold on a machine shared with
other work; the elapsed rates printed beside them do not, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from capacity_model import render
from capacity_servers import private_postgres, private_redis, process_tree_cpu_seconds
from common import fresh_db, quiet_logging
from report import machine

from backburner import Backburner

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "CAPACITY.md"
BATCH = 100
WARMUP = 500
PAGE = 4096


@dataclass
class Phase:
    """One phase's counters, each a difference between after and before, per job."""

    store: str
    name: str
    jobs: int
    seconds: float
    client_cpu: float
    counters: dict[str, float]

    def per_job(self, key: str) -> float:
        return self.counters.get(key, 0.0) / self.jobs


class StoreCounters(Protocol):
    """A store's own counters, read around each phase."""

    async def read(self) -> dict[str, float]: ...

    async def close(self) -> None: ...


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


async def _measure(store: str, name: str, jobs: int, counters: StoreCounters,
                   work: Callable[[], Awaitable[None]]) -> Phase:
    before = await counters.read()
    cpu0, t0 = time.process_time(), time.perf_counter()
    await work()
    seconds, client = time.perf_counter() - t0, time.process_time() - cpu0
    after = await counters.read()
    return Phase(store, name, jobs, seconds, client, _diff(after, before))


def _make_app(url: str) -> tuple[Backburner, Any]:
    app = Backburner(url)

    @app.task(name="capacity.noop")
    async def noop() -> None:
        return None

    return app, noop


async def _run_store(store: str, url: str, jobs: int, counters: StoreCounters) -> list[Phase]:
    app, noop = _make_app(url)
    async with app:
        async def drain() -> None:
            await app.worker(concurrency=10, burst=True, scheduler=False).run()

        async def one_by_one() -> None:
            for _ in range(jobs):
                await noop.enqueue()

        async def batched() -> None:
            for start in range(0, jobs, BATCH):
                await noop.enqueue_many([()] * min(BATCH, jobs - start))

        # Warm up: scripts loaded, statements prepared, pages cached, pools filled.
        await noop.enqueue_many([()] * WARMUP)
        await drain()
        phases = [await _measure(store, "enqueue, one by one", jobs, counters, one_by_one)]
        phases.append(await _measure(store, "drain", jobs, counters, drain))
        batches = f"enqueue, batches of {BATCH}"
        phases.append(await _measure(store, batches, jobs, counters, batched))
        phases.append(await _measure(store, "drain", jobs, counters, drain))
    await counters.close()
    return phases


class RedisCounters:
    """The server's CPU time, commands (the ones run inside Lua scripts included) and bytes."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)

    async def read(self) -> dict[str, float]:
        cpu = await self.client.info("cpu")
        stats = await self.client.info("stats")
        commands = await self.client.info("commandstats")
        own = {"cmdstat_info"}
        return {
            "server_cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
            "commands": float(sum(v["calls"] for k, v in commands.items() if k not in own)),
            "command_usec": float(sum(v["usec"] for k, v in commands.items() if k not in own)),
            "net_in": float(stats["total_net_input_bytes"]),
            "net_out": float(stats["total_net_output_bytes"]),
        }

    async def close(self) -> None:
        await self.client.aclose()


class PostgresCounters:
    """The server's CPU time, statements, WAL bytes and commits."""

    def __init__(self, url: str, postmaster: int) -> None:
        self.url = url
        self.postmaster = postmaster
        self.conn: Any = None

    async def _settled_commits(self) -> float:
        """Backends publish their commit counts to pg_stat_database about once a second
        (more rarely when idle): read until two readings 1.2 s apart agree, at most 12 s."""
        query = (
            "SELECT xact_commit::float8 FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        last = -1.0
        for _ in range(10):
            await self.conn.execute("SELECT pg_stat_clear_snapshot()")
            now: float = await self.conn.fetchval(query)
            if now == last:
                break
            last = now
            await asyncio.sleep(1.2)
        return last

    async def read(self) -> dict[str, float]:
        import asyncpg

        if self.conn is None:
            self.conn = await asyncpg.connect(self.url)
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        commits = await self._settled_commits()
        statements = await self.conn.fetchrow(
            "SELECT coalesce(sum(calls), 0)::float8 AS calls,"
            " coalesce(sum(total_exec_time), 0)::float8 AS ms FROM pg_stat_statements"
            " WHERE query NOT LIKE '%pg_stat%' AND query NOT LIKE '%pg_current_wal%'"
        )
        # The WAL insert position is exact at once (pg_stat_wal lags like the commit count).
        wal = await self.conn.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8"
        )
        return {
            "server_cpu": process_tree_cpu_seconds(self.postmaster),
            "statements": statements["calls"],
            "statement_ms": statements["ms"],
            "wal_bytes": wal,
            "commits": commits,
        }

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


class SqliteCounters:
    """Bytes this process sent to storage (the SQLite store runs inside it), in pages."""

    async def read(self) -> dict[str, float]:
        io = Path("/proc/self/io").read_text().splitlines()
        fields = dict(line.split(": ") for line in io)
        return {"pages_written": int(fields["write_bytes"]) / PAGE}

    async def close(self) -> None:
        return None


async def measure_all(jobs: int, stores: list[str]) -> list[Phase]:
    phases: list[Phase] = []
    if "sqlite" in stores:
        with fresh_db("capacity") as db:
            phases += await _run_store("SQLite", f"sqlite:///{db}", jobs, SqliteCounters())
    if "redis" in stores:
        with private_redis() as (url, _pid):
            phases += await _run_store("Redis", url, jobs, RedisCounters(url))
    if "postgres" in stores:
        with private_postgres() as (url, postmaster):
            phases += await _run_store("PostgreSQL", url, jobs, PostgresCounters(url, postmaster))
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per phase (default 5000)")
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--write", action="store_true", help=f"write {OUT.name}")
    args = parser.parse_args()
    if args.jobs < BATCH:
        parser.error(f"--jobs must be at least {BATCH}")
    quiet_logging()
    load_before = os.getloadavg()
    phases = asyncio.run(measure_all(args.jobs, args.stores.split(",")))
    about = machine()
    about.pop("Huey", None)
    about["Load average (1, 5, 15 min) before / after"] = (
        f"{' '.join(f'{x:.2f}' for x in load_before)} / "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    about["Jobs per phase"] = f"{args.jobs:,}"
    about["Measured"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = render(phases, about, os.cpu_count() or 1)
    print(text)
    if args.write:
        OUT.write_text(text)
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
