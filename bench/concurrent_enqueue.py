"""Enqueue rate with many concurrent enqueuers against one at a time, per store (the group
commit's effect, `backburner.group_commit`): N coroutines in one process, each enqueueing
one job after another, as the requests of a busy web server do.

    .venv/bin/python bench/concurrent_enqueue.py [--jobs 5000] [--enqueuers 1,10,100]
                                                 [--stores sqlite,redis,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

from sync_api import destroy, make_app, store_url


async def rate(url: str, jobs: int, enqueuers: int) -> float:
    app = make_app(url)
    noop = app.get_task("noop")
    await noop.enqueue(-1)  # connect and migrate outside the timing
    each = jobs // enqueuers

    async def enqueuer() -> None:
        for n in range(each):
            await noop.enqueue(n)

    began = time.perf_counter()
    await asyncio.gather(*(enqueuer() for _ in range(enqueuers)))
    took = time.perf_counter() - began
    await destroy(app)
    return each * enqueuers / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--enqueuers", default="1,10,100")
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    options = parser.parse_args()
    counts = [int(c) for c in options.enqueuers.split(",")]
    print(f"# {options.jobs} enqueues per row; load average {os.getloadavg()[0]:.2f}, "
          f"Python {sys.version.split()[0]}")
    print(f"{'store':<9} {'enqueuers':>9} {'jobs/s':>9} {'vs 1':>7}")
    with tempfile.TemporaryDirectory() as directory:
        for kind in options.stores.split(","):
            base = None
            for count in counts:
                got = asyncio.run(rate(store_url(kind, directory), options.jobs, count))
                base = base or got
                print(f"{kind:<9} {count:>9} {got:>9.0f} {got / base:>6.2f}x")


if __name__ == "__main__":
    main()
