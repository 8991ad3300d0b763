"""What the sync API costs against `await task.enqueue`, on each store.

Rows, one enqueue after another (no concurrency: the hand-off is what is measured):
- `await enqueue`   : a coroutine on its own loop (the baseline);
- `enqueue_sync, portal`: a plain thread (a Django or Flask view, a script): the call runs
  on the app's portal loop thread while the caller waits;
- `enqueue_sync, server loop`: a worker thread of a running loop (a FastAPI `def`
  endpoint): the call runs on that loop.

Reports jobs/s and the median µs per call, and each sync row's ratio to the baseline.

    .venv/bin/python bench/sync_api.py [--jobs 2000] [--stores sqlite,redis,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

from backburner import Backburner

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def store_url(kind: str, directory: str) -> str:
    token = uuid.uuid4().hex[:8]
    if kind == "sqlite":
        return f"sqlite:///{directory}/sync-{token}.db"
    if kind == "redis":
        return f"{REDIS}?prefix=bench-sync-{token}"
    if kind == "postgres":
        return f"{POSTGRES}?schema=bench_sync_{token}"
    raise SystemExit(f"unknown store {kind!r}")


def make_app(url: str) -> Backburner:
    app = Backburner(url)

    @app.task(name="noop")
    async def noop(n: int) -> None:
        return None

    return app


def timed(calls: int, one: Callable[[int], object]) -> list[float]:
    took = []
    for n in range(calls):
        began = time.perf_counter()
        one(n)
        took.append(time.perf_counter() - began)
    return took


def measure(url: str, jobs: int) -> dict[str, list[float]]:
    app = make_app(url)
    noop = app.get_task("noop")
    rows: dict[str, list[float]] = {}

    async def baseline() -> list[float]:
        await noop.enqueue(-1)  # connect and migrate outside the timing
        took = []
        for n in range(jobs):
            began = time.perf_counter()
            await noop.enqueue(n)
            took.append(time.perf_counter() - began)
        return took

    rows["await enqueue"] = asyncio.run(baseline())

    noop.enqueue_sync(-1)
    rows["enqueue_sync, portal"] = timed(jobs, noop.enqueue_sync)
    app.close_sync()

    async def server() -> list[float]:
        await noop.enqueue(-1)  # this loop becomes the app's home loop
        return await asyncio.to_thread(timed, jobs, noop.enqueue_sync)

    rows["enqueue_sync, server loop"] = asyncio.run(server())
    asyncio.run(destroy(app))
    return rows


async def destroy(app: Backburner) -> None:
    await app.open()
    remove = getattr(app.backend, "destroy", None)
    if remove is not None:
        await remove()
    await app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    options = parser.parse_args()
    print(f"# sync API cost, {options.jobs} enqueues per row, one at a time; "
          f"load average {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}, "
          f"{threading.active_count()} thread(s) at start")
    print(f"{'store':<9} {'row':<27} {'jobs/s':>8} {'p50 µs':>8} {'vs await':>9}")
    with tempfile.TemporaryDirectory() as directory:
        for kind in options.stores.split(","):
            rows = measure(store_url(kind, directory), options.jobs)
            base = sum(rows["await enqueue"])
            for name, took in rows.items():
                rate = len(took) / sum(took)
                print(f"{kind:<9} {name:<27} {rate:>8.0f} "
                      f"{statistics.median(took) * 1e6:>8.0f} {base / sum(took):>8.2f}x")


if __name__ == "__main__":
    main()
