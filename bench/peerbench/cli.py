"""`python bench/run.py --peers`: Backburner on SQLite, Redis and PostgreSQL side by side with
its peers, each in its own virtualenv, on the same Redis and PostgreSQL.

    python bench/run.py --peers                 # 20,000 jobs, 500 samples, 2,000 sleepers
    python bench/run.py --peers --quick         # 1,000 jobs, 50 samples, 200 sleepers
    python bench/run.py --peers --write         # also write its section of bench/RESULTS.md
    python bench/run.py --peers --only rq,backburner-redis

Redis: database 14 of 127.0.0.1:6379, flushed between scenarios (nothing else in it is
touched). PostgreSQL: schemas bench_backburner and bench_procrastinate of database `test`
on 127.0.0.1:5432, dropped and recreated between scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shlex
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import redis
from report import commit, cpu_model, memory, write_section

from peerbench import venvs
from peerbench.adapter import Environment, Peer, StoreKind
from peerbench.adapters import all_systems
from peerbench.report import document_section, evaluate, results_table, targets_table
from peerbench.scenarios import METRICS, Cell, Settings, SystemResult, measure
from peerbench.stores import PG_DSN, REDIS_URL, Store, make_store

BENCH_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BENCH_DIR / "out"
SECTION = "peers"
MIN_JOBS = 500
FULL = Settings(jobs=20_000, sleep_jobs=2_000, samples=500, warmup=20, batch=1_000)
QUICK = Settings(jobs=1_000, sleep_jobs=200, samples=50, warmup=5, batch=250)


@dataclass(frozen=True)
class Options:
    settings: Settings
    only: list[str]
    skip: list[str]
    install: bool
    write: bool
    out: Path
    argv: list[str]


def parse_args(argv: list[str]) -> Options:
    keys = [p.key for p in all_systems()]
    parser = argparse.ArgumentParser(
        prog="bench/run.py --peers", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help="small counts: a smoke run of every system (a few minutes)")
    parser.add_argument("--jobs", type=int, help="no-op jobs per enqueue/drain scenario")
    parser.add_argument("--sleep-jobs", type=int, help="jobs of the sleep scenario")
    parser.add_argument("--samples", type=int, help="latency samples")
    parser.add_argument("--batch", type=int, help="jobs per bulk-enqueue call")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(keys)}")
    parser.add_argument("--skip", default="", help="comma-separated systems to leave out")
    parser.add_argument("--no-install", dest="install", action="store_false",
                        help="fail instead of creating or updating a virtualenv")
    parser.add_argument("--write", action="store_true",
                        help="write the peers section of bench/RESULTS.md")
    parser.add_argument("--out", type=Path, default=OUT_DIR,
                        help="directory for worker logs and the raw JSON (bench/out)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    settings = Settings(
        jobs=args.jobs or base.jobs,
        sleep_jobs=args.sleep_jobs or base.sleep_jobs,
        samples=args.samples or base.samples,
        warmup=base.warmup,
        batch=args.batch or base.batch,
    )
    if min(settings.sleep_jobs, settings.samples, settings.batch) < 1:
        parser.error("--sleep-jobs, --samples and --batch must be >= 1")
    if settings.jobs < MIN_JOBS:
        # Each of the two drain processes must find jobs while the other holds its first
        # batch (a Backburner worker claims 100, arq reads up to 500) at the start barrier.
        parser.error(f"--jobs must be >= {MIN_JOBS}")
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    skip = [k.strip() for k in args.skip.split(",") if k.strip()]
    unknown = sorted(set(only + skip) - set(keys))
    if unknown:
        parser.error(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(keys)}")
    return Options(settings, only, skip, args.install, args.write, args.out, argv)


# -- services ---------------------------------------------------------------------------------
def service_problems() -> dict[StoreKind, str]:
    """Stores that cannot be reached, with why (every system on them is then skipped)."""
    problems: dict[StoreKind, str] = {}
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        problems["redis"] = f"Redis at {REDIS_URL} unreachable ({exc})"

    async def pg() -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(pg())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        problems["postgresql"] = f"PostgreSQL at {PG_DSN} unreachable ({exc})"
    return problems


def versions_of(peer: Peer, env: Environment) -> dict[str, str]:
    try:
        installed = venvs.versions(env)
    except Exception as exc:  # reporting only: never fail a run over it
        return {"?": str(exc)}
    return {name: installed[name] for name in peer.packages if name in installed}


def not_measured(peer: Peer, why: str) -> SystemResult:
    result = SystemResult(peer)
    for metric in METRICS:
        result.cells[metric] = Cell(note=f"not available: {why}")
    return result


# -- the run ----------------------------------------------------------------------------------
def run(opts: Options) -> list[SystemResult]:
    systems = [p for p in all_systems()
               if (not opts.only or p.key in opts.only) and p.key not in opts.skip]
    problems = service_problems()
    for why in problems.values():
        print(f"! {why}: its systems are skipped", file=sys.stderr, flush=True)
    log_dir = opts.out / "peer-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stores: dict[StoreKind, Store] = {}
    results: list[SystemResult] = []
    try:
        for peer in systems:
            started = time.perf_counter()
            try:
                result = measure_one(peer, opts, problems, stores, log_dir)
            except Exception as exc:  # a harness bug for one system must not end the run
                print(f"! {peer.label}: {type(exc).__name__}: {exc}", file=sys.stderr)
                result = not_measured(peer, f"harness error: {type(exc).__name__}: {exc}")
            result.details["seconds_total"] = time.perf_counter() - started
            print(f"  {peer.label}: {result.details['seconds_total']:.0f} s",
                  file=sys.stderr, flush=True)
            results.append(result)
    finally:
        for store in stores.values():
            store.close()
    return results


def measure_one(peer: Peer, opts: Options, problems: dict[StoreKind, str],
                stores: dict[StoreKind, Store], log_dir: Path) -> SystemResult:
    if peer.store in problems:
        return not_measured(peer, problems[peer.store])
    try:
        env = venvs.environment(peer, install=opts.install)
    except venvs.InstallFailed as exc:
        return not_measured(peer, f"virtualenv: {exc}")
    why = peer.unavailable(env)
    if why:
        print(f"! {peer.label}: not available: {why}", file=sys.stderr, flush=True)
        return not_measured(peer, why)
    store = stores.get(peer.store)
    if store is None:
        store = stores[peer.store] = make_store(peer.store)
    result = measure(peer, env, store, opts.settings, log_dir)
    result.details["versions"] = versions_of(peer, env)
    result.details["store_version"] = _safe(store.version)
    return result


def _safe(call: Any) -> str:
    try:
        return str(call())
    except Exception as exc:
        return f"unknown ({exc})"


def machine(results: list[SystemResult], load_before: str, measured: str) -> dict[str, str]:
    store_versions: dict[str, str] = {}
    for r in results:
        if "store_version" in r.details:
            store_versions.setdefault(r.peer.store, r.details["store_version"])
    return {
        "Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Commit": measured,
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores",
        "Memory": memory(),
        "OS": platform.platform(),
        "Python": f"{platform.python_version()} (every virtualenv)",
        "Redis": f"{store_versions.get('redis', '?')} at {REDIS_URL} (flushed between "
                 f"scenarios; {_safe(redis_settings)})",
        "PostgreSQL": f"{store_versions.get('postgresql', '?')} at {PG_DSN} (own schemas, "
                      f"dropped between scenarios; {_safe(postgres_settings)})",
        "SQLite": f"{sqlite3.sqlite_version} (a fresh file in {_tmp()} per scenario)",
        "Load average (1, 5, 15 min) before / after": f"{load_before} / {_load()}",
    }


def redis_settings() -> str:
    """What decides Redis's durability (and so its cost per write), as configured."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        found = {**client.config_get("appendonly"), **client.config_get("appendfsync"),
                 **client.config_get("save")}
    finally:
        client.close()
    return ", ".join(f"{k}={v!r}" for k, v in sorted(found.items()))


def postgres_settings() -> str:
    """What decides the cost of a PostgreSQL commit, as configured."""

    async def read() -> str:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
        try:
            names = ("fsync", "synchronous_commit", "shared_buffers", "max_connections")
            values = [f"{n}={await conn.fetchval(f'SHOW {n}')}" for n in names]
        finally:
            await conn.close()
        return ", ".join(values)

    return asyncio.run(read())


def _tmp() -> str:
    import tempfile

    return tempfile.gettempdir()


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def raw(results: list[SystemResult], settings: Settings) -> dict[str, Any]:
    return {
        "settings": settings.__dict__,
        "systems": [
            {
                "key": r.peer.key,
                "label": r.peer.label,
                "store": r.peer.store,
                "cells": {k: {"value": c.value, "note": c.note} for k, c in r.cells.items()},
                "details": r.details,
                "config": r.peer.config(),
            }
            for r in results
        ],
    }


def main(argv: list[str]) -> None:
    opts = parse_args(argv)
    load_before = _load()
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(f"! load average {load_before}: something else is running; figures will be low "
              "and noisy (the run records the load before and after)", file=sys.stderr)
    measured = commit()  # at the start: others may commit to src/ during a long run
    started = time.perf_counter()
    results = run(opts)
    elapsed = time.perf_counter() - started
    table, footnotes = results_table(results, opts.settings)
    verdicts = evaluate(results, opts.settings)
    print()
    print(table)
    print()
    for n, note in enumerate(footnotes, 1):
        print(f"[{n}] {note}")
    print()
    print(targets_table(verdicts))
    print(f"\n(total {elapsed:.0f} s)")
    opts.out.mkdir(parents=True, exist_ok=True)
    latest = opts.out / "peers-latest.json"
    latest.write_text(json.dumps(raw(results, opts.settings), indent=1, default=str))
    print(f"raw results: {latest}", file=sys.stderr)
    if opts.write:
        command = shlex.join(["python", "bench/run.py", "--peers", *opts.argv])
        body = document_section(command, machine(results, load_before, measured), opts.settings,
                                results, elapsed)
        path = BENCH_DIR / "RESULTS.md"
        write_section(path, SECTION, body)
        print(f"wrote the {SECTION} section of {path}", file=sys.stderr)

