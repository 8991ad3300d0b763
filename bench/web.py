"""Web benchmark: a FastAPI app under uvicorn (1 process) loaded by `wrk`, one background job
per request, a separate worker (1 process) draining at the same time.

    python bench/web.py                      # every row, 10 s of load each (~5-6 min)
    python bench/web.py --duration 3 --only noop,background-tasks,backburner-redis-enqueue
    python bench/web.py --write              # also write the "web" section of RESULTS.md

Rows: the endpoint doing nothing; FastAPI's in-memory `BackgroundTasks`; Backburner's
`DurableBackgroundTasks` and `await task.enqueue()` on SQLite, Redis and PostgreSQL; Celery,
Dramatiq, arq, SAQ, taskiq, Huey and Procrastinate called as their docs show from FastAPI,
each in its own virtualenv (bench/.venvs/<name>-web). Reported: requests/s and HTTP p50/p99
(wrk), and enqueue-to-start lag p50/p99 of the jobs (the task records start - enqueue time).
Redis: database 14 (flushed per row); PostgreSQL: the peers benchmark's schemas.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from peerbench import venvs
from peerbench.adapter import Environment, StoreKind
from peerbench.cli import postgres_settings, redis_settings, service_problems
from peerbench.stores import PG_DSN, REDIS_URL, Store, make_store
from report import BENCH_DIR, commit, cpu_model, load_average, memory, write_section
from webbench import wrk
from webbench.measure import DRAIN_TIMEOUT, Load, RowResult, measure
from webbench.systems import VENV_SUFFIX, WEB_REQUIREMENTS, System, all_systems

SECTION = "web"
TITLE = ("## Web requests: FastAPI + uvicorn under wrk, one job per request "
         "(`python bench/web.py --write`)")
OUT_DIR = BENCH_DIR / "out"
BASELINE = "background-tasks"
TARGET_VS_MEMORY = 0.7
TARGET_VS_PEER = 2.0
WEB_PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools")


def parse_args(argv: list[str]) -> argparse.Namespace:
    keys = [s.key for s in all_systems()]
    parser = argparse.ArgumentParser(prog="bench/web.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per row")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of every row, in alternating order; the median is kept")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(keys)}")
    parser.add_argument("--skip", default="", help="comma-separated rows to leave out")
    parser.add_argument("--no-install", dest="install", action="store_false",
                        help="skip a peer whose virtualenv is missing instead of building it")
    parser.add_argument("--write", action="store_true", help="write its section of RESULTS.md")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="logs and raw JSON")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 1:
        parser.error("--duration and --warmup must be >= 1 s")
    if min(args.connections, args.threads, args.rounds) < 1:
        parser.error("--connections, --threads and --rounds must be >= 1")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections (wrk refuses)")
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    args.skip = [k.strip() for k in args.skip.split(",") if k.strip()]
    unknown = sorted(set(args.only + args.skip) - set(keys))
    if unknown:
        parser.error(f"unknown row(s): {', '.join(unknown)}; known: {', '.join(keys)}")
    return args


def _versions(system: System, env: Environment) -> dict[str, str]:
    try:
        installed = venvs.versions(env)
    except Exception as exc:  # reporting only
        return {"?": str(exc)}
    names = (*(system.peer.packages if system.peer else ("backburner", "redis", "asyncpg")),
             *WEB_PACKAGES)
    return {n: installed[n] for n in names if n in installed}


def run(args: argparse.Namespace, log_dir: Path) -> list[RowResult]:
    """Every row, `--rounds` times; per row the round with the median requests/s. Rounds
    alternate the order of the rows, so a drift in the machine's load (it may be shared)
    does not always hit the same rows."""
    systems = [s for s in all_systems()
               if (not args.only or s.key in args.only) and s.key not in args.skip]
    problems = service_problems()
    rounds: dict[str, list[RowResult]] = {s.key: [] for s in systems}
    for n in range(args.rounds):
        if args.rounds > 1:
            print(f"… round {n + 1} of {args.rounds}", file=sys.stderr, flush=True)
        order = systems if n % 2 == 0 else systems[::-1]
        for result in run_round(order, args, problems, log_dir):
            rounds[result.system.key].append(result)
    return [median(rounds[s.key]) for s in systems]


def median(results: list[RowResult]) -> RowResult:
    measured = sorted((r for r in results if r.wrk), key=lambda r: r.wrk.requests_per_second
                      if r.wrk else 0.0)
    if not measured:
        return results[0]
    chosen = measured[(len(measured) - 1) // 2]
    chosen.rounds = [r.wrk.requests_per_second for r in measured if r.wrk]
    return chosen


def run_round(systems: list[System], args: argparse.Namespace, problems: dict[StoreKind, str],
              log_dir: Path) -> list[RowResult]:
    load = Load(args.duration, args.warmup, args.connections, args.threads)
    stores: dict[StoreKind, Store] = {}
    results: list[RowResult] = []
    try:
        for system in systems:
            started = time.perf_counter()
            result = RowResult(system)
            if system.store is not None and system.store in problems:
                result.note = f"skipped: {problems[system.store]}"
            else:
                try:
                    env = (venvs.environment(system.peer, args.install, WEB_REQUIREMENTS,
                                             VENV_SUFFIX)
                           if system.peer else Environment(Path(sys.executable).parent))
                except venvs.InstallFailed as exc:
                    result.note = f"skipped: virtualenv: {exc}"
                else:
                    store = None
                    if system.store is not None:
                        store = stores.get(system.store) or make_store(system.store)
                        stores[system.store] = store
                    result = measure(system, env, store, load, log_dir)
                    result.versions = _versions(system, env)
            print(f"  {system.label}: {_rate(result)} req/s, {time.perf_counter() - started:.0f} s"
                  + (f" ({result.note})" if result.note else ""), file=sys.stderr, flush=True)
            results.append(result)
    finally:
        for store in stores.values():
            store.close()
    return results


# -- report -----------------------------------------------------------------------------------
def _rate(r: RowResult) -> str:
    return f"{r.wrk.requests_per_second:,.0f}" if r.wrk else "—"


def _ms(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2f}"


def _find(results: list[RowResult], key: str) -> RowResult | None:
    return next((r for r in results if r.system.key == key and r.wrk), None)


def table(results: list[RowResult]) -> str:
    base = _find(results, BASELINE)
    lines = [
        "| System | Endpoint's call | Requests/s | vs BackgroundTasks | HTTP p50 ms "
        "| HTTP p99 ms | Lag p50 ms | Lag p99 ms | Jobs completed / enqueued |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.system
        ratio = (f"{r.wrk.requests_per_second / base.wrk.requests_per_second:.2f}x"
                 if r.wrk and base and base.wrk else "—")
        jobs = (f"{r.completed:,} / {r.enqueued:,}" if s.jobs and r.wrk else "—")
        if r.wrk is None:
            lines.append(f"| {s.label} | {s.call} | {r.note or 'failed'} | — | — | — | — | — "
                         "| — |")
            continue
        lines.append(f"| {s.label} | {s.call} | {_rate(r)} | {ratio} | {_ms(r.wrk.p50_ms)} "
                     f"| {_ms(r.wrk.p99_ms)} | {_ms(r.lag_ms(50))} | {_ms(r.lag_ms(99))} "
                     f"| {jobs} |")
    return "\n".join(lines)


def targets(results: list[RowResult]) -> list[str]:
    """The issue's targets for the durable Redis enqueue, as measured (not tuned for)."""
    base = _find(results, BASELINE)
    peers = [r for r in results if r.system.peer is not None and r.wrk]
    best = max(peers, key=lambda r: r.wrk.requests_per_second if r.wrk else 0, default=None)
    lines = []
    for key in ("backburner-redis-background", "backburner-redis-enqueue"):
        r = _find(results, key)
        if r is None or r.wrk is None:
            continue
        rate = r.wrk.requests_per_second
        if base and base.wrk:
            x = rate / base.wrk.requests_per_second
            lines.append(f"{r.system.label}: {x:.2f}x BackgroundTasks (target ≥ "
                         f"{TARGET_VS_MEMORY}x): {'met' if x >= TARGET_VS_MEMORY else 'NOT met'}")
        if best and best.wrk:
            x = rate / best.wrk.requests_per_second
            lines.append(f"{r.system.label}: {x:.2f}x the best peer, {best.system.label} "
                         f"(target ≥ {TARGET_VS_PEER}x): "
                         f"{'met' if x >= TARGET_VS_PEER else 'NOT met'}")
    return lines


def notes(results: list[RowResult], args: argparse.Namespace) -> list[str]:
    out = [
        f"Rounds: {args.rounds}, the rows in alternating order; each row shows its round "
        "with the median requests/s (with two rounds, the lower)." if args.rounds > 1 else
        "Rounds: 1 (figures from a single run of each row).",
        f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency` "
        f"with POST requests, after a {args.warmup:g} s warm-up at the same load (its jobs "
        "drained, its lag samples discarded). Requests/s and HTTP percentiles are wrk's.",
        "Web: `python -m uvicorn <app>:api` in one process, its defaults otherwise (`--loop "
        "auto --http auto`, so uvloop and httptools, installed with `backburner[fastapi]` = "
        "`uvicorn[standard]`), access log off. Each row's server reported: "
        + "; ".join(sorted({r.server for r in results if r.server})) + ".",
        "Lag: the endpoint passes `time.time()` as the job's argument; the task, as it starts, "
        "appends `time.time() - enqueued_at` to a file of its process (one O_APPEND write). "
        "p50/p99 over every job the measured run enqueued that started within "
        f"{DRAIN_TIMEOUT:.0f} s of its end. BackgroundTasks runs the task in the web process "
        "after the response, so its lag is in-process.",
        "Jobs enqueued: counted by the endpoint once the call returned (DurableBackgroundTasks: "
        "when the endpoint returns, the job is stored right after, before the response); "
        "completed: jobs whose task started.",
        "Workers: one process each, the peers benchmark's configuration (see its section): "
        "`backburner worker --concurrency 100`; Celery `--pool solo --prefetch-multiplier 128`; "
        "Dramatiq 8 threads (1 ms idle poll); arq `max_jobs=100`, `poll_delay=0.001`; SAQ "
        "concurrency 100; taskiq `--max-async-tasks 100`; Huey `-k thread -w 1`; "
        "Procrastinate `--concurrency 100`. Sync clients (Celery, Dramatiq, Huey) are called "
        "in `def` endpoints, which FastAPI runs in its threadpool (40 threads).",
    ]
    own = next((r.versions for r in results if r.versions and r.system.peer is None), None)
    if own:
        out.append("The repository's .venv (noop, BackgroundTasks, Backburner): "
                   + ", ".join(f"{k} {v}" for k, v in own.items()) + ".")
    for r in results:
        extra = []
        if r.wrk and (r.wrk.non_2xx or r.wrk.socket_errors):
            extra.append(f"{r.wrk.non_2xx:,} non-2xx responses, {r.wrk.socket_errors:,} socket "
                         "errors")
        if r.system.jobs and r.wrk and r.completed < r.enqueued:
            extra.append(f"{r.enqueued - r.completed:,} jobs not started {DRAIN_TIMEOUT:.0f} s "
                         "after the load stopped")
        elif r.drain_seconds is not None and r.system.jobs and not r.system.in_process:
            extra.append(f"queue drained {r.drain_seconds:.1f} s after the load stopped")
        if r.note and r.wrk:
            extra.append(r.note)
        if len(r.rounds) > 1:
            extra.append("requests/s of the rounds: "
                         + ", ".join(f"{x:,.0f}" for x in sorted(r.rounds)))
        if r.versions and r.system.peer is not None:
            extra.append(", ".join(f"{k} {v}" for k, v in r.versions.items()))
        if extra:
            out.append(f"{r.system.label}: " + "; ".join(extra) + ".")
    return out


def machine(load_before: str, measured: str) -> dict[str, str]:
    def safe(call: Any) -> str:
        try:
            return str(call())
        except Exception as exc:
            return f"unknown ({exc})"

    return {
        "Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Commit": measured,
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores (server, worker, wrk and the stores "
               "share them)",
        "Memory": memory(),
        "OS": platform.platform(),
        "Python": f"{platform.python_version()} (every virtualenv)",
        "wrk": wrk.available() or "not installed",
        "Redis": f"{REDIS_URL} ({safe(redis_settings)})",
        "PostgreSQL": f"{PG_DSN} ({safe(postgres_settings)})",
        "Load average (1, 5, 15 min) before / after": f"{load_before} / {load_average()}",
    }


def document(command: str, info: dict[str, str], results: list[RowResult],
             args: argparse.Namespace, elapsed: float) -> str:
    parts = [TITLE, "", f"Command: `{command}` ({elapsed:.0f} s)", "",
             *(f"- **{k}**: {v}" for k, v in info.items()), "", table(results), "",
             "Targets (issue 14; measured, not tuned for):", "",
             *(f"- {line}" for line in targets(results)), "", "Notes:", "",
             *(f"- {n}" for n in notes(results, args)), ""]
    return "\n".join(parts)


def raw(results: list[RowResult]) -> list[dict[str, Any]]:
    return [{
        "key": r.system.key, "label": r.system.label, "note": r.note, "server": r.server,
        "requests_per_second": r.wrk.requests_per_second if r.wrk else None,
        "http_p50_ms": r.wrk.p50_ms if r.wrk else None,
        "http_p99_ms": r.wrk.p99_ms if r.wrk else None,
        "non_2xx": r.wrk.non_2xx if r.wrk else None,
        "socket_errors": r.wrk.socket_errors if r.wrk else None,
        "lag_p50_ms": r.lag_ms(50), "lag_p99_ms": r.lag_ms(99),
        "enqueued": r.enqueued, "completed": r.completed, "drain_seconds": r.drain_seconds,
        "versions": r.versions,
    } for r in results]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if wrk.available() is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    load_before = load_average()
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(f"! load average {load_before}: something else is running; figures will be low "
              "and noisy (the load before and after is recorded)", file=sys.stderr)
    measured = commit()
    log_dir = args.out / "web-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = run(args, log_dir)
    elapsed = time.perf_counter() - started
    print()
    print(table(results))
    print()
    for line in targets(results):
        print(f"- {line}")
    for note in notes(results, args):
        print(f"- {note}")
    print(f"\n(total {elapsed:.0f} s; load average before {load_before}, after {load_average()})")
    latest = args.out / "web-latest.json"
    latest.write_text(json.dumps(raw(results), indent=1))
    print(f"raw results: {latest}; logs: {log_dir}", file=sys.stderr)
    if args.write:
        command = shlex.join(["python", "bench/web.py", *argv])
        path = BENCH_DIR / "RESULTS.md"
        write_section(path, SECTION,
                      document(command, machine(load_before, measured), results, args, elapsed))
        print(f"wrote the {SECTION} section of {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
