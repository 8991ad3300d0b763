"""Where a drained job's time goes.

    python bench/profile_drain.py [--jobs 20000] [--concurrency 50] [--write]

1. Drain without a profiler (median of 3): the real cost per job.
2. Drain with cProfile in the worker process. Every function's own time is charged to the
   nearest enclosing "anchor" (claim SQL, completion SQL, notifier, ...) by walking up the
   call graph, split in proportion to each caller's share. cProfile inflates Python calls
   far more than time spent inside SQLite, so read these as shares, not absolute costs.
3. The same drain on the `memory://` backend: the worker's own cost with no store at all.
4. Micro-benchmarks of single components, without a profiler, for absolute numbers.

`--write` saves the report as bench/PROFILE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bb_scenarios as bb
from bb_app import make_app
from common import BENCH_DIR, fresh_db, quiet_logging
from report import machine

from backburner import Backburner, codec
from backburner.backends.protocol import Completion
from backburner.context import JobContext
from backburner.execution import _finished_within
from backburner.instrument import Change

FuncKey = tuple[str, int, str]

# (file suffix, function name or "*") -> category. The first anchor met walking up from a
# function is where its time is charged; order matters only for readability.
ANCHORS: list[tuple[str, str, str]] = [
    ("backends/sqlite/backend.py", "_claim", "claim SQL (incl. BEGIN/COMMIT)"),
    ("backends/sqlite/backend.py", "_complete", "completion SQL (incl. BEGIN/COMMIT)"),
    ("backends/sqlite/backend.py", "*", "other SQL"),
    ("backends/sqlite/connection.py", "_checkpoint", "WAL checkpoint (on the thread)"),
    ("backends/sqlite/connection.py", "*", "SQLite connection wrapper"),
    ("concurrent/futures/thread.py", "*", "thread hops"),
    ("concurrent/futures/_base.py", "*", "thread hops"),
    ("asyncio/base_events.py", "run_in_executor", "thread hops"),
    ("asyncio/futures.py", "*", "thread hops"),
    ("asyncio/base_events.py", "call_soon_threadsafe", "thread hops"),
    ("asyncio/selector_events.py", "_write_to_self", "thread hops"),
    ("asyncio/base_events.py", "create_task", "asyncio task creation"),
    ("asyncio/tasks.py", "*", "asyncio task creation"),
    ("asyncio/timeouts.py", "*", "asyncio.timeout()"),
    ("backburner/context.py", "__init__", "JobContext()"),
    ("backburner/signature.py", "decode", "argument decoding (Signature.bind)"),
    ("backburner/signature.py", "encode_result", "result encoding (pydantic)"),
    ("backburner/codec.py", "*", "JSON (orjson)"),
    ("backburner/backends/sqlite/datagrams.py", "*", "notifier (publish, datagrams)"),
    ("backburner/notify.py", "*", "notifier (publish, datagrams)"),
    ("backburner/instrument.py", "*", "instrumentation (Change/Event objects)"),
    ("backburner/worker.py", "_change_for", "instrumentation (Change/Event objects)"),
    ("logging/__init__.py", "*", "logging"),
    ("backburner/execution.py", "*", "worker bookkeeping (run_attempt, _start, acks)"),
    ("backburner/worker.py", "*", "worker bookkeeping (run_attempt, _start, acks)"),
    ("bench/bb_worker.py", "*", "benchmark's call counters"),
    ("~", "<method 'poll' of 'select.epoll' objects>", "idle (waiting in epoll)"),
    ("~", "<method 'get' of '_queue.SimpleQueue' objects>", "idle (thread waiting for work)"),
    ("asyncio/base_events.py", "*", "event loop scheduling"),
    ("asyncio/events.py", "*", "event loop scheduling"),
    ("asyncio/selector_events.py", "*", "event loop scheduling"),
    ("asyncio/locks.py", "*", "event loop scheduling"),
    ("~", "<method 'run' of '_contextvars.Context' objects>", "event loop scheduling"),
]


# Never anchors: `WriteTransaction` runs BEGIN/COMMIT for whichever function uses it, and
# the retry loop runs whatever the thread was given (a checkpoint, a slow-path call).
TRANSPARENT = {("backends/sqlite/connection.py", "__enter__"),
               ("backends/sqlite/connection.py", "__exit__"),
               ("backends/sqlite/connection.py", "_call_with_retries")}


def anchor_of(key: FuncKey) -> str | None:
    file, _, name = key
    if any(file.endswith(suffix) and name == func for suffix, func in TRANSPARENT):
        return None
    # Comprehensions and lambdas belong to the function that contains them: walk up.
    anonymous = file != "~" and name.startswith("<")
    for suffix, func, category in ANCHORS:
        if file.endswith(suffix) and (func == name or (func == "*" and not anonymous)):
            return category
    return None


class Attribution:
    """Charges each function's own time to anchors, walking up the call graph."""

    def __init__(self, stats: pstats.Stats) -> None:
        self.raw: dict[FuncKey, Any] = stats.stats  # type: ignore[attr-defined]
        self._memo: dict[FuncKey, dict[str, float]] = {}

    def categories(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for key, (_, _, own, _, _) in self.raw.items():
            for category, share in self._shares(key, frozenset()).items():
                totals[category] += own * share
        return dict(totals)

    def _shares(self, key: FuncKey, seen: frozenset[FuncKey]) -> dict[str, float]:
        if key in self._memo:
            return self._memo[key]
        anchor = anchor_of(key)
        if anchor is not None:
            return {anchor: 1.0}
        callers = self.raw.get(key, (0, 0, 0, 0, {}))[4]
        weights = {c: edge[3] for c, edge in callers.items() if c not in seen}
        total = sum(weights.values())
        if total <= 0:
            return {"other": 1.0}
        shares: dict[str, float] = defaultdict(float)
        for caller, weight in weights.items():
            for category, share in self._shares(caller, seen | {key}).items():
                shares[category] += share * weight / total
        if not seen:  # only results computed without a cut-off are safe to reuse
            self._memo[key] = dict(shares)
        return shares


def top_functions(stats: pstats.Stats, jobs: int, count: int) -> list[str]:
    raw: dict[FuncKey, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:count]
    lines = ["| Function | Calls | Own µs/job | Incl. µs/job |", "|---|---:|---:|---:|"]
    for (file, line, name), (_, calls, own, incl, _) in rows:
        where = name if file == "~" else f"{_short(file)}:{line} {name}"
        lines.append(f"| `{where}` | {calls:,} | {own / jobs * 1e6:.2f} | "
                     f"{incl / jobs * 1e6:.2f} |")
    return lines


def _short(file: str) -> str:
    for marker in ("/src/", "/lib/python3", "/bench/"):
        if marker in file:
            tail = file.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3" else tail
    return file


def category_table(categories: dict[str, float], jobs: int, real_us: float | None) -> list[str]:
    """`real_us`: the unprofiled µs/job this thread's busy time adds up to (the loop thread
    is the bottleneck); None for a side thread, whose time mostly overlaps."""
    busy_total = sum(v for k, v in categories.items() if not k.startswith("idle"))
    lines = [
        "| Category | Profiled µs/job | Share of busy time | ≈ real µs/job |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in sorted(categories.items(), key=lambda kv: kv[1], reverse=True):
        us = seconds / jobs * 1e6
        if name.startswith("idle"):
            lines.append(f"| {name} | {us:.2f} | — | — |")
            continue
        share = seconds / busy_total
        real = "—" if real_us is None else f"{share * real_us:.1f}"
        lines.append(f"| {name} | {us:.2f} | {share:.1%} | {real} |")
    return lines


# -- micro-benchmarks -------------------------------------------------------------------------
@dataclass(frozen=True)
class Micro:
    name: str
    us_per_job: float
    detail: str


async def _per_call_us(call: Callable[[], Awaitable[Any]], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n * 1e6


def _sync_us(call: Callable[[], Any], n: int = 50_000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e6


async def store_micros(jobs: int, batch: int) -> list[Micro]:
    """Claim and complete through the public Backend API, without a worker around them."""
    with fresh_db("micro") as db:
        bench = make_app(db)
        async with bench.app:
            await bb._fill(bench.noop, jobs, 1000)
            backend = bench.app.backend
            claim_s = complete_s = 0.0
            done = 0
            while True:
                started = time.perf_counter()
                claim = await backend.claim("micro", ["default"], batch, 30.0)
                claimed = time.perf_counter()
                if not claim.jobs:
                    break
                await backend.complete([Completion(j.id, j.attempt, "null") for j in claim.jobs])
                claim_s += claimed - started
                complete_s += time.perf_counter() - claimed
                done += len(claim.jobs)
    return [
        Micro("claim (backend.claim)", claim_s / done * 1e6,
              f"batches of {batch}: {claim_s / done * batch * 1e3:.2f} ms per batch"),
        Micro("complete (backend.complete)", complete_s / done * 1e6,
              f"batches of {batch}: {complete_s / done * batch * 1e3:.2f} ms per batch"),
    ]


async def python_micros(batch: int) -> list[Micro]:
    loop = asyncio.get_running_loop()
    app = Backburner("memory://")

    @app.task(name="micro.noop")
    async def noop() -> None:
        return None

    signature = noop.signature

    async def no_progress(ctx: JobContext, progress: Any) -> bool:
        return True

    def context() -> JobContext:
        return JobContext(job_id="j", task="t", queue="q", attempt=1, max_attempts=4,
                          write_progress=no_progress, loop=loop)

    async def trivial() -> None:
        return None

    async def task_round_trip() -> None:
        await loop.create_task(trivial())

    async def wait_call() -> None:
        await _finished_within(loop.create_task(trivial()), None)

    async def asyncio_wait_call() -> None:
        await asyncio.wait((loop.create_task(trivial()),))

    executor = ThreadPoolExecutor(1)
    await loop.run_in_executor(executor, int)  # start the thread outside the timing
    hop = await _per_call_us(lambda: loop.run_in_executor(executor, int), 5_000)
    executor.shutdown()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_app = Backburner(f"sqlite:///{Path(tmp) / 'jobs.db'}")
        changes = [Change(f"id{i}", "t", "default", "completed", 1) for i in range(batch)]
        # Two state changes per job (running, completed), published in batches.
        instrument = _sync_us(lambda: sqlite_app.instrumentation.changed(changes), 5_000)
        instrument = instrument * 2 / batch
    return [
        Micro("thread hop (run_in_executor round trip)", hop / batch,
              f"{hop:.0f} µs per hop, amortised over a batch of {batch}"),
        Micro("create_task + run a coroutine", await _per_call_us(task_round_trip, 20_000),
              "one task awaited at a time (the worker runs 50 per loop pass: less)"),
        Micro("JobContext()", _sync_us(context), f"its threading.Event() "
              f"({_sync_us(threading.Event):.2f} µs) is made only by wait_cancelled"),
        Micro("create_task + wait for the call (no timeout)",
              await _per_call_us(wait_call, 20_000),
              f"asyncio.wait((call,)) instead: {await _per_call_us(asyncio_wait_call, 20_000):.2f}"
              " µs; no asyncio.timeout per job"),
        Micro("JSON args/kwargs loads + Signature decode",
              _sync_us(lambda: signature.decode(codec.loads("[]"), codec.loads("{}"))),
              f"decode alone {_sync_us(lambda: signature.decode([], {})):.2f} µs"),
        Micro("result encode (pydantic) + dumps",
              _sync_us(lambda: codec.dumps(signature.encode_result(None))), ""),
        Micro("instrumentation.changed, 2 per job", instrument,
              f"SQLite notifier, no listener, batches of {batch}"),
    ]


async def memory_drain(jobs: int, concurrency: int) -> float:
    """µs/job for the same drain on memory:// (no SQL, no thread): the worker's own cost."""
    app = Backburner("memory://")

    @app.task(name="bench.noop")
    async def noop() -> None:
        return None

    async with app:
        await bb._fill(noop, jobs, 1000)
        worker = app.worker(concurrency=concurrency, burst=True)
        started = time.perf_counter()
        await worker.run()
        return (time.perf_counter() - started) / worker.processed * 1e6


# -- the report -----------------------------------------------------------------------------
def profile_section(title: str, path: Path, jobs: int, real_us: float | None) -> list[str]:
    if not path.exists():
        return []
    stats = pstats.Stats(str(path))
    profiled_us = stats.total_tt / jobs * 1e6  # type: ignore[attr-defined]
    categories = Attribution(stats).categories()
    return [
        f"### {title}",
        "",
        f"Profiled: {profiled_us:.1f} µs/job of thread time, idle included.",
        "",
        *category_table(categories, jobs, real_us),
        "",
        "Top functions by own time:",
        "",
        *top_functions(stats, jobs, 20),
        "",
    ]


def build_report(jobs: int, concurrency: int) -> str:
    runs = [bb.drain(jobs, concurrency, "asyncio") for _ in range(3)]
    real = statistics.median(r.seconds for r in runs) / jobs * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "drain")
        profiled = bb.drain(jobs, concurrency, "asyncio", profile=prefix)
        sections = [
            *profile_section("Event-loop thread", Path(f"{prefix}.main"), jobs, real),
            *profile_section("SQLite thread", Path(f"{prefix}.thread"), jobs, None),
        ]
    memory_us = asyncio.run(memory_drain(jobs, concurrency))
    micros = asyncio.run(store_micros(jobs, concurrency)) + asyncio.run(
        python_micros(concurrency)
    )
    claim, complete = runs[1].worker["claim"], runs[1].worker["complete"]
    return "\n".join([
        "# Where a drained job's time goes",
        "",
        "Command: `python bench/profile_drain.py "
        f"--jobs {jobs} --concurrency {concurrency}`",
        "",
        *(f"- **{k}**: {v}" for k, v in machine().items()),
        "",
        f"Drain of {jobs:,} no-op jobs by one burst worker process, concurrency "
        f"{concurrency}: **{real:.1f} µs/job** ({1e6 / real:,.0f} jobs/s, median of 3) "
        f"without a profiler; {profiled.seconds / jobs * 1e6:.1f} µs/job under cProfile. "
        f"Round trips to the store: {claim['calls']} claims and {complete['calls']} completion "
        f"batches. The same drain on `memory://` (no SQL, no thread): **{memory_us:.1f} "
        "µs/job**, the worker's own cost.",
        "",
        "## Components measured alone (no profiler)",
        "",
        "| Component | µs/job | Detail |",
        "|---|---:|---|",
        *(f"| {m.name} | {m.us_per_job:.2f} | {m.detail} |" for m in micros),
        "",
        "## cProfile of the worker process",
        "",
        "Own time of every function, charged to the nearest enclosing category. The last "
        "column scales each share to the unprofiled µs/job (cProfile slows Python calls more "
        "than SQLite's C code, so SQL shares are understated).",
        "",
        *sections,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="write bench/PROFILE.md")
    args = parser.parse_args()
    quiet_logging()
    text = build_report(args.jobs, args.concurrency)
    print(text)
    if args.write:
        (BENCH_DIR / "PROFILE.md").write_text(text)
        print(f"wrote {BENCH_DIR / 'PROFILE.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
