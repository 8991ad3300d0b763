"""A Backburner worker process for the benchmark.

`--mode drain`: burst worker; reports how long it took to empty the queue, timed from inside
the process (after the connection is open) so interpreter start-up and imports are excluded.
`--mode serve`: idle worker until SIGTERM (latency scenario).
`--profile PREFIX`: also cProfile the event-loop thread and the SQLite thread.
"""

from __future__ import annotations

import argparse
import cProfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

from bb_app import make_app
from common import LOOPS, emit, quiet_logging, run_async, wal_bytes

from backburner import Backburner


@dataclass
class CallStats:
    """Round trips to the store and their sizes: batching is where throughput comes from."""

    calls: int = 0
    items: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"calls": self.calls, "items": self.items, "seconds": self.seconds}


@dataclass
class Counters:
    claim: CallStats = field(default_factory=CallStats)
    complete: CallStats = field(default_factory=CallStats)


def count_calls(app: Backburner, counters: Counters) -> None:
    """Wrap the backend's claim/complete on this instance only (src/ stays untouched). The
    cost is one extra coroutine frame per batch, not per job."""
    backend: Any = app.backend

    def wrap(method: Callable[..., Awaitable[Any]], stats: CallStats,
             size: Callable[[Any, tuple[Any, ...]], int]) -> Callable[..., Awaitable[Any]]:
        @wraps(method)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            # The worker passes options by keyword (claim's `alone`): pass them on.
            started = time.perf_counter()
            result = await method(*args, **kwargs)
            stats.seconds += time.perf_counter() - started
            stats.calls += 1
            stats.items += size(result, args)
            return result

        return counted

    backend.claim = wrap(backend.claim, counters.claim, lambda r, a: len(r.jobs))
    backend.complete = wrap(backend.complete, counters.complete, lambda r, a: len(a[0]))


def sqlite_executor(app: Backburner) -> ThreadPoolExecutor | None:
    """The SQLite backend's own thread, if this version has one. cProfile only sees the
    thread it was enabled in, so that thread needs a profiler of its own. This reaches into
    a private attribute: when it moves, the thread simply goes unprofiled."""
    db = getattr(app.backend, "_db", None)
    get = getattr(db, "_executor_for_this_process", None)
    executor = get() if get is not None else None
    return executor if isinstance(executor, ThreadPoolExecutor) else None


class Profiles:
    """cProfile on the event-loop thread and, when there is one, the SQLite thread."""

    def __init__(self, app: Backburner, prefix: str) -> None:
        self.prefix = prefix
        self.main = cProfile.Profile()
        self.thread = cProfile.Profile()
        self.executor = sqlite_executor(app)

    def start(self) -> None:
        if self.executor is not None:
            # The pool has one thread, so this enables profiling on exactly that thread.
            self.executor.submit(self.thread.enable).result()
        self.main.enable()

    def stop(self) -> None:
        self.main.disable()
        self.main.dump_stats(f"{self.prefix}.main")
        if self.executor is not None:
            self.executor.submit(self.thread.disable).result()
            self.thread.dump_stats(f"{self.prefix}.thread")


async def drain(db: Path, concurrency: int, profile: str | None) -> dict[str, Any]:
    bench = make_app(db)
    app = bench.app
    await app.open()
    counters = Counters()
    count_calls(app, counters)
    worker = app.worker(concurrency=concurrency, burst=True)
    profiles = Profiles(app, profile) if profile else None
    if profiles is not None:
        profiles.start()
    started = time.perf_counter()
    await worker.run()
    seconds = time.perf_counter() - started
    if profiles is not None:
        profiles.stop()
    wal = wal_bytes(db)  # before close: closing the last connection removes the WAL
    await app.close()
    return {
        "seconds": seconds,
        "processed": worker.processed,
        "wal_bytes": wal,
        "claim": counters.claim.as_dict(),
        "complete": counters.complete.as_dict(),
    }


async def serve(db: Path, concurrency: int) -> dict[str, Any]:
    app = make_app(db).app
    # Not burst: waits for notifications; stops gracefully on SIGTERM (main thread).
    worker = app.worker(concurrency=concurrency)
    await worker.run()
    await app.close()
    return {"processed": worker.processed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--mode", choices=("drain", "serve"), required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--loop", choices=LOOPS, default="asyncio")
    parser.add_argument("--profile", help="write cProfile stats to PREFIX.main and PREFIX.thread")
    args = parser.parse_args()
    quiet_logging()
    if args.mode == "drain":
        report = run_async(lambda: drain(args.db, args.concurrency, args.profile), args.loop)
    else:
        report = run_async(lambda: serve(args.db, args.concurrency), args.loop)
    emit(report)


if __name__ == "__main__":
    main()
