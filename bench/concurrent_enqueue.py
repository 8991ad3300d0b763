"""Enqueue rate with many concurrent enqueuers against one at a time, per store (the group
commit's effect, `backburner.group_commit`), and Procrastinate's beside it: N coroutines in
one process, each enqueueing one job after another, as the requests of a busy web server do.

    .venv/bin/python bench/concurrent_enqueue.py [--jobs 5000] [--enqueuers 1,10,100]
        [--stores sqlite,redis,postgres] [--peers procrastinate | --peers none]
        [--no-install] [--write]

Backburner runs here (`await task.enqueue(n)`, a fresh store per row); a peer runs in its own
virtualenv (bench/.venvs/<name>, built on first use from its adapter's pins, as for
`run.py --peers`) through bench/peers/concurrent_client.py (Procrastinate: `await
task.defer_async()`, in the schema `bench_procrastinate`, dropped and recreated per row).
Every row first enqueues one job per enqueuer, untimed (connections, pools, schema).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import asyncpg
from common import BENCH_DIR
from peerbench import venvs
from peerbench.adapter import Peer, StoreKind
from peerbench.adapters import all_systems
from peerbench.cli import postgres_settings, redis_settings, service_problems
from peerbench.procs import PEERS_DIR, child_env
from peerbench.scenarios import Settings
from peerbench.stores import PG_DSN, STORE_TIMEOUT, make_store
from report import commit, cpu_model, load_average, memory, write_section
from sync_api import POSTGRES, REDIS, destroy, make_app, store_url

CLIENT = PEERS_DIR / "concurrent_client.py"
SECTION = "concurrent"
TITLE = ("## Concurrent enqueuers: Backburner and Procrastinate "
         "(`python bench/concurrent_enqueue.py --write`)")
STORE_KINDS: dict[str, StoreKind] = {"sqlite": "sqlite", "redis": "redis",
                                     "postgres": "postgresql"}
# Peers this measures: those with an async client on PostgreSQL (the comparison).
# Their schema alone is reset before each row, so a peers or web benchmark's Backburner schema
# is left alone. (A synchronous client, Celery's or RQ's, would make the coroutines take
# turns, not run concurrently.)
PEERS = ("procrastinate",)
# Issue 14, PostgreSQL with fsync on, at 100 enqueuers.
TARGET_VS_SEQUENTIAL = 8.0
TARGET_VS_PEER = 5.0
TARGET_PEER = "procrastinate"
TARGET_ENQUEUERS = 100


@dataclass
class Row:
    system: str
    key: str  # "backburner-<store>" or the peer's key
    store: str
    enqueuers: int
    rate: float | None = None  # jobs/s
    note: str = ""
    base: float | None = None  # the same system's sequential rate (1 enqueuer)

    def ratio(self) -> str:
        return f"{self.rate / self.base:.2f}x" if self.rate and self.base else "—"


@dataclass
class Run:
    rows: list[Row] = field(default_factory=list)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # peer label: versions


# -- Backburner, in this process --------------------------------------------------------------
async def rate(url: str, jobs: int, enqueuers: int) -> float:
    app = make_app(url)
    noop = app.get_task("noop")
    each = jobs // enqueuers

    async def enqueuer(first: int, count: int) -> None:
        for n in range(first, first + count):
            await noop.enqueue(n)

    # Connect, migrate and let the pool grow to this concurrency outside the timing.
    await asyncio.gather(*(enqueuer(-1, 1) for _ in range(enqueuers)))
    began = time.perf_counter()
    await asyncio.gather(*(enqueuer(0, each) for _ in range(enqueuers)))
    took = time.perf_counter() - began
    await destroy(app)
    return each * enqueuers / took


def backburner_rate(kind: str, directory: str, jobs: int, enqueuers: int) -> float:
    return asyncio.run(rate(store_url(kind, directory), jobs, enqueuers))


# -- a peer, in its virtualenv ----------------------------------------------------------------
def peer_rate(peer: Peer, python: str, jobs: int, enqueuers: int) -> float:
    """One row of a peer, from an empty schema: concurrent_client.py's jobs / seconds."""
    store_env = make_store(peer.store).env()  # the peers benchmark's DSN and schema
    asyncio.run(_reset_schema(store_env["BENCH_PG_SCHEMA"]))
    # The peers benchmark's limit: slower than 60 jobs/s (at least 60 s) is a failure.
    timeout = Settings(jobs=jobs, sleep_jobs=0, samples=0).timeout(jobs)
    command = [python, str(CLIENT), peer.app_module, "--jobs", str(jobs),
               "--enqueuers", str(enqueuers)]
    try:
        done = subprocess.run(command, cwd=PEERS_DIR, env=child_env(store_env),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from None
    last = next((line for line in reversed(done.stdout.splitlines()) if line.strip()), "")
    if done.returncode != 0 or not last:
        errors = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        raise RuntimeError(f"client exited {done.returncode}: {errors[-1].strip()[:300]}")
    report = json.loads(last)
    return float(report["jobs"]) / float(report["seconds"])


async def _reset_schema(schema: str) -> None:
    """Drop and recreate the peer's schema only (PostgresStore.reset drops Backburner's
    `bench_backburner` too, which a peers or web benchmark running beside this may be using)."""
    conn = await asyncpg.connect(PG_DSN, timeout=STORE_TIMEOUT)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};",
                           timeout=STORE_TIMEOUT)
    finally:
        await conn.close()


# -- the run ----------------------------------------------------------------------------------
def _series(rows: list[Row], measure: Callable[[int], float]) -> None:
    """Measure the rows of one system, fewest enqueuers first; each row's ratio is to the
    1-enqueuer row (the sequential rate), when there is one."""
    for row in rows:
        try:
            row.rate = measure(row.enqueuers)
        except Exception as exc:  # one failed row is reported, the others still run
            row.note = f"failed: {type(exc).__name__}: {exc}"
        row.base = rows[0].rate if rows[0].enqueuers == 1 else None
        print(f"  {row.system} ({row.store}), {row.enqueuers} enqueuers: "
              + (f"{row.rate:,.0f} jobs/s" if row.rate else row.note), file=sys.stderr,
              flush=True)


def run(args: argparse.Namespace) -> Run:
    result = Run()
    problems = service_problems()
    with tempfile.TemporaryDirectory() as directory:
        for kind in args.stores:
            rows = [Row("Backburner", f"backburner-{kind}", kind, c) for c in args.enqueuers]
            problem = problems.get(STORE_KINDS[kind])
            if problem:
                for row in rows:
                    row.note = f"skipped: {problem}"
            else:
                _series(rows, partial(backburner_rate, kind, directory, args.jobs))
            result.rows += rows
    for peer in args.peers:
        store = next(k for k, v in STORE_KINDS.items() if v == peer.store)
        rows = [Row(peer.label, peer.key, store, c) for c in args.enqueuers]
        result.rows += rows
        problem = problems.get(peer.store)
        try:
            env = venvs.environment(peer, args.install)
        except venvs.InstallFailed as exc:
            problem = problem or f"virtualenv: {exc}"
        if problem:
            for row in rows:
                row.note = f"skipped: {problem}"
            continue
        installed = venvs.versions(env)
        result.versions[peer.label] = {n: installed[n] for n in peer.packages if n in installed}
        _series(rows, partial(peer_rate, peer, env.python, args.jobs))
    return result


# -- report -----------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    lines = ["| System | Store | Enqueuers | Jobs/s | vs its own sequential rate |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        figure = f"{r.rate:,.0f}" if r.rate else (r.note or "failed")
        lines.append(f"| {r.system} | {r.store} | {r.enqueuers} | {figure} | {r.ratio()} |")
    return "\n".join(lines)


def _find(rows: list[Row], key: str, enqueuers: int) -> Row | None:
    return next((r for r in rows if r.key == key and r.enqueuers == enqueuers and r.rate),
                None)


def targets(rows: list[Row]) -> list[str]:
    """Issue 14's PostgreSQL targets, as measured (not tuned for)."""
    ours = _find(rows, "backburner-postgres", TARGET_ENQUEUERS)
    if ours is None or ours.rate is None:
        return []
    n = TARGET_ENQUEUERS
    lines = []
    if ours.base:
        x = ours.rate / ours.base
        met = "met" if x >= TARGET_VS_SEQUENTIAL else "NOT met"
        lines.append(f"Backburner postgres at {n} vs its sequential rate: {x:.1f}x (target ≥ "
                     f"{TARGET_VS_SEQUENTIAL:g}x): {met}")
    peer = _find(rows, TARGET_PEER, n)
    if peer is not None and peer.rate:
        x = ours.rate / peer.rate
        met = "met" if x >= TARGET_VS_PEER else "NOT met"
        lines.append(f"Backburner at {n} vs Procrastinate at {n}: {x:.1f}x (target ≥ "
                     f"{TARGET_VS_PEER:g}x): {met}")
    return lines


def machine(load_before: str, measured: str) -> dict[str, str]:
    def safe(call: Callable[[], str]) -> str:
        try:
            return call()
        except Exception as exc:
            return f"unknown ({exc})"

    return {
        "Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Commit": measured,
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores (the enqueuing process and the stores "
               "share them)",
        "Memory": memory(),
        "OS": platform.platform(),
        "Python": f"{platform.python_version()} (every virtualenv)",
        "PostgreSQL": f"{POSTGRES} ({safe(postgres_settings)})",
        "Redis": f"{REDIS} ({safe(redis_settings)})",
        "Load average (1, 5, 15 min) before / after": f"{load_before} / {load_average()}",
    }


def notes(result: Run, jobs: int) -> list[str]:
    peers = {r.key for r in result.rows if not r.key.startswith("backburner")}
    out = [
        f"{jobs:,} no-op jobs per row (rounded down to a multiple of the enqueuers), one "
        "process: C coroutines each enqueue one job after another, all started together; "
        "jobs/s = jobs / time until the last returns. Before the timing, one job per enqueuer "
        "(connections, pool growth, schema). The ratio is to the same system's 1-enqueuer row.",
        "Backburner: `await task.enqueue(n)` in the repository's .venv, its defaults "
        "(PostgreSQL: pool of 10 connections, group commit; a fresh schema, SQLite file or "
        "Redis prefix per row, removed after it).",
    ]
    if TARGET_PEER in peers:
        out.append("Procrastinate: `await task.defer_async()` from its own virtualenv "
                   "(bench/.venvs/procrastinate, the peers benchmark's pins), its defaults "
                   "(`PsycopgConnector`: psycopg_pool's default pool, 4 connections), in the "
                   "schema `bench_procrastinate`, dropped, recreated and given Procrastinate's "
                   "schema before each row (bench/peers/procrastinate_app.py).")
        out.append("Procrastinate's pool is not what limits it: given psycopg pools of 4, 20 and "
                   "100 connections by hand (2,000 jobs, 100 enqueuers, 2026-12-07) it enqueued "
                   "1,310, 1,088 and 1,166 jobs/s. Each defer is one transaction whose insert "
                   "trigger NOTIFYs, and PostgreSQL serializes notifying commits: a lock on "
                   "\"database 0\" taken before commit and held until after it, WAL flush "
                   "included (PreCommit_Notify, src/backend/commands/async.c), so those commits "
                   "cannot share a flush.")
    out += [
        "Single runs, no repeats: a few hundred ms per row at this count, so expect ±30 % "
        "or more on a shared machine (the load average is above).",
    ]
    for label, found in result.versions.items():
        out.append(f"{label}: " + ", ".join(f"{k} {v}" for k, v in found.items()) + ".")
    return out


def document(command: str, info: dict[str, str], result: Run, jobs: int,
             elapsed: float) -> str:
    return "\n".join([
        TITLE, "", f"Command: `{command}` ({elapsed:.0f} s)", "",
        *(f"- **{k}**: {v}" for k, v in info.items()), "", table(result.rows), "",
        "Targets (issue 14, PostgreSQL with fsync on; measured, not tuned for):", "",
        *(f"- {line}" for line in targets(result.rows)), "", "Notes:", "",
        *(f"- {n}" for n in notes(result, jobs)), ""])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/concurrent_enqueue.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per row")
    parser.add_argument("--enqueuers", default="1,10,100", help="concurrent enqueuers per row")
    parser.add_argument("--stores", default="sqlite,redis,postgres",
                        help="Backburner's stores, of: sqlite, redis, postgres")
    parser.add_argument("--peers", default=None,
                        help=f"comma-separated, of: {', '.join(PEERS)}; or none "
                             "(default: procrastinate when postgres is among the stores)")
    parser.add_argument("--no-install", dest="install", action="store_false",
                        help="skip a peer whose virtualenv is missing instead of building it")
    parser.add_argument("--write", action="store_true",
                        help="write the concurrent section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    args.enqueuers = sorted({int(c) for c in args.enqueuers.split(",") if c.strip()})
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if not args.enqueuers or min(args.enqueuers) < 1:
        parser.error("--enqueuers: positive counts")
    if args.jobs < max(args.enqueuers):
        parser.error("--jobs must be at least the largest count of enqueuers")
    unknown = sorted(set(args.stores) - {"sqlite", "redis", "postgres"})
    if unknown:
        parser.error(f"unknown store(s): {', '.join(unknown)}")
    if args.peers is None:
        keys = [TARGET_PEER] if "postgres" in args.stores else []
    else:
        keys = [k.strip() for k in args.peers.split(",") if k.strip() and k.strip() != "none"]
    unknown = sorted(set(keys) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(unknown)}; "
                     f"known: {', '.join(PEERS)}")
    args.peers = [p for p in all_systems() if p.key in keys]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    load_before = load_average()
    measured = commit()
    started = time.perf_counter()
    result = run(args)
    elapsed = time.perf_counter() - started
    print(f"# {args.jobs:,} enqueues per row; load average before {load_before}, after "
          f"{load_average()}; Python {sys.version.split()[0]}")
    print(table(result.rows))
    for line in targets(result.rows):
        print(f"- {line}")
    if args.write:
        command = shlex.join(["python", "bench/concurrent_enqueue.py", *argv])
        path = BENCH_DIR / "RESULTS.md"
        write_section(path, SECTION, document(command, machine(load_before, measured), result,
                                              args.jobs, elapsed))
        print(f"wrote the {SECTION} section of {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
