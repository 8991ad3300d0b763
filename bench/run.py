"""Backburner benchmark on SQLite, side by side with Huey.

    python bench/run.py                 # 20,000 jobs, 500 latency samples (~1 minute)
    python bench/run.py --quick         # 2,000 jobs, 100 samples, 1 repeat: a smoke run
    python bench/run.py --write         # also write bench/RESULTS.md
    python bench/run.py --peers [--quick] [--write]   # every backend against every peer:
                                        # see bench/peerbench/cli.py and bench/README.md

Scenarios, each on a fresh database in a temporary directory:
enqueue one by one and with `enqueue_many`; drain of a full queue by ONE worker process
(timed inside that process, so interpreter start-up is excluded); enqueue-to-result latency
of sequential jobs with an idle worker in the same process and in another process. Huey runs
the same drain and cross-process latency. Throughput scenarios are repeated (`--repeat`) and
the median run is reported.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import bb_scenarios as bb
from common import BENCH_DIR, LOOPS, percentile, quiet_logging, run_async
from report import SQLITE_SECTION, Row, document, table, write_section

if TYPE_CHECKING:
    import huey_scenarios as hz

TARGET_DRAIN = 6_000.0
TARGET_ENQUEUE_MANY = 20_000.0
TARGET_P50_LOCAL_MS = 1.0
TARGET_P50_REMOTE_MS = 5.0


class HasRate(Protocol):
    @property
    def rate(self) -> float: ...


R = TypeVar("R", bound=HasRate)


@dataclass(frozen=True)
class Options:
    jobs: int
    batch: int
    samples: int
    concurrency: int
    repeat: int
    loop: str
    huey: bool
    write: bool


@dataclass(frozen=True)
class Measured:
    one_by_one: bb.Throughput
    many: bb.Throughput
    drain: bb.DrainResult
    local: list[float]
    remote: list[float]
    huey_drain: hz.HueyDrain | None
    huey_remote: list[float] | None


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, help="jobs per throughput scenario (20000)")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per enqueue_many call")
    parser.add_argument("--samples", type=int, help="latency samples per scenario (500)")
    parser.add_argument("--concurrency", type=int, default=50, help="worker concurrency")
    parser.add_argument("--repeat", type=int, help="runs per throughput scenario (3)")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop")
    parser.add_argument("--quick", action="store_true", help="2000 jobs, 100 samples, 1 run")
    parser.add_argument("--no-huey", dest="huey", action="store_false", help="skip Huey")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args(argv)
    jobs = args.jobs or (2_000 if args.quick else 20_000)
    samples = args.samples or (100 if args.quick else 500)
    repeat = args.repeat or (1 if args.quick else 3)
    if min(jobs, samples, repeat, args.batch, args.concurrency) < 1:
        parser.error("--jobs, --samples, --repeat, --batch and --concurrency must be >= 1")
    return Options(jobs, args.batch, samples, args.concurrency, repeat, args.loop, args.huey,
                   args.write)


def step(label: str) -> None:
    print(f"… {label}", file=sys.stderr, flush=True)


def median_run(repeat: int, run: Callable[[], R]) -> R:
    """The run with the median rate: one noisy run (a VM neighbour, a checkpoint) should
    neither make nor break a figure."""
    runs = sorted((run() for _ in range(repeat)), key=lambda r: r.rate)
    return runs[len(runs) // 2]


def measure(opts: Options) -> Measured:
    n, loop = opts.jobs, opts.loop
    step(f"Backburner: enqueue {n:,} one by one (x{opts.repeat})")
    one_by_one = median_run(opts.repeat, lambda: run_async(lambda: bb.enqueue_one_by_one(n),
                                                           loop))
    step(f"Backburner: enqueue_many {n:,} in batches of {opts.batch} (x{opts.repeat})")
    many = median_run(opts.repeat, lambda: run_async(lambda: bb.enqueue_many(n, opts.batch),
                                                     loop))
    step(f"Backburner: drain {n:,} with one worker process (x{opts.repeat})")
    drained = median_run(opts.repeat, lambda: bb.drain(n, opts.concurrency, loop))
    step(f"Backburner: latency, {opts.samples} jobs, worker in process")
    local = run_async(lambda: bb.latency_in_process(opts.samples, opts.concurrency), loop)
    step(f"Backburner: latency, {opts.samples} jobs, worker in another process")
    remote = run_async(lambda: bb.latency_cross_process(opts.samples, opts.concurrency, loop),
                       loop)
    huey_drain = huey_remote = None
    if opts.huey:
        # Imported here: Huey is not a dependency of the repository's .venv (`pip install
        # huey` for this comparison), and `--peers` must not need it.
        try:
            import huey_scenarios as hz
        except ImportError as exc:
            step(f"Huey skipped: {exc} (pip install huey, or --no-huey)")
            return Measured(one_by_one, many, drained, local, remote, None, None)
        step(f"Huey: enqueue and drain {n:,} with one consumer process (x{opts.repeat})")
        huey_drain = median_run(opts.repeat, lambda: hz.drain(n))
        step(f"Huey: latency, {opts.samples} jobs, consumer in another process")
        huey_remote = hz.latency(opts.samples)
    return Measured(one_by_one, many, drained, local, remote, huey_drain, huey_remote)


def ms(samples: list[float], q: float) -> float:
    return percentile(samples, q) * 1000


def ms_or_none(samples: list[float] | None, q: float) -> float | None:
    return None if samples is None else ms(samples, q)


def rows(opts: Options, m: Measured) -> list[Row]:
    hd = m.huey_drain
    return [
        Row("Enqueue, one by one", "jobs/s", m.one_by_one.rate, hd.enqueue_rate if hd else None),
        Row(f"Enqueue, `enqueue_many` x {opts.batch}", "jobs/s", m.many.rate,
            target=TARGET_ENQUEUE_MANY),
        Row("Drain, 1 worker process", "jobs/s", m.drain.rate, hd.rate if hd else None,
            TARGET_DRAIN),
        Row("Drain, first claim → last finish (job rows)", "jobs/s", m.drain.span_rate),
        Row("Latency p50, worker in process", "ms", ms(m.local, 50),
            target=TARGET_P50_LOCAL_MS),
        Row("Latency p99, worker in process", "ms", ms(m.local, 99)),
        Row("Latency p50, worker in another process", "ms", ms(m.remote, 50),
            ms_or_none(m.huey_remote, 50), TARGET_P50_REMOTE_MS),
        Row("Latency p99, worker in another process", "ms", ms(m.remote, 99),
            ms_or_none(m.huey_remote, 99)),
    ]


def notes(opts: Options, m: Measured) -> list[str]:
    claim, complete = m.drain.worker["claim"], m.drain.worker["complete"]

    def per_call(stats: dict[str, float]) -> str:
        calls = max(int(stats["calls"]), 1)
        return (f"{stats['calls']:,} calls of {stats['items'] / calls:.1f} jobs, "
                f"{stats['seconds'] / calls * 1e3:.2f} ms each")

    mib = 1024 * 1024
    return [
        f"Drain: {opts.jobs:,} queued no-op jobs, one burst worker process, "
        f"concurrency={opts.concurrency}, timed inside the worker process from "
        "`worker.run()` to its return (start-up excluded); median of "
        f"{opts.repeat} run(s). Claims: {per_call(claim)}; completions: {per_call(complete)}.",
        f"WAL file at the end of a scenario: enqueue one by one "
        f"{m.one_by_one.wal_bytes / mib:,.1f} MiB, enqueue_many {m.many.wal_bytes / mib:,.1f} "
        f"MiB, drain {m.drain.wal_bytes / mib:,.1f} MiB (a WAL that is never reset grows, and "
        "commits slow down with it).",
        f"Latency: {opts.samples} sequential jobs after {bb.WARMUP} warm-up ones; each sample "
        "is `await task.enqueue()` + `await job.result()` as seen by the enqueuer; "
        f"mean in process {statistics.mean(m.local) * 1e3:.2f} ms, in another process "
        f"{statistics.mean(m.remote) * 1e3:.2f} ms.",
        "Huey: `SqliteHuey(fsync=False)` (no fsync per commit, like Backburner's "
        "synchronous=NORMAL in WAL mode); consumer with 1 thread worker, polling every 1 ms "
        "(`initial_delay=0.001, backoff=1, max_delay=0.001`; the defaults poll at 0.1 to 10 s); "
        "results read with `get(blocking=True, backoff=1, max_delay=0.0005)`. A no-op that "
        "returns None stores no result in Huey; Backburner always records completion.",
        "Ratios are Backburner/Huey: above 1x is better for jobs/s, below 1x is better for ms.",
        f"Event loop: {opts.loop}. Logging at WARNING in every process.",
    ]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if "--peers" in args:
        # Backburner on every backend against its peers: bench/peerbench/ (own options).
        from peerbench.cli import main as peers_main

        peers_main([a for a in args if a != "--peers"])
        return
    opts = parse_args(args)
    quiet_logging()
    started = time.perf_counter()
    measured = measure(opts)
    table_rows, table_notes = rows(opts, measured), notes(opts, measured)
    print()
    print(table(table_rows))
    print()
    for note in table_notes:
        print(f"- {note}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if opts.write:
        settings = {
            "jobs": f"{opts.jobs:,}", "enqueue_many batch": str(opts.batch),
            "latency samples": str(opts.samples), "worker concurrency": str(opts.concurrency),
            "repeats": str(opts.repeat), "event loop": opts.loop,
        }
        command = " ".join(["python bench/run.py", shlex.join(args)]).strip()
        path = BENCH_DIR / "RESULTS.md"
        write_section(path, SQLITE_SECTION, document(command, settings, table_rows, table_notes))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
