"""Concurrent enqueuers of one library, run by bench/concurrent_enqueue.py inside its virtualenv:

    <venv>/bin/python bench/peers/concurrent_client.py MODULE --jobs N --enqueuers C

MODULE is a `<peer>_app` module next to this file (its `make_client()`, as for client.py).
C coroutines in this one process each enqueue N // C no-op jobs one after another with the
client's `enqueue` (Procrastinate: `await task.defer_async()`), as the requests of an async
web server do. Prints one JSON line: the jobs enqueued and the seconds they took.

Standard library only (besides the library under test): this file runs in every venv.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
import time
from typing import Any


async def run(module_name: str, jobs: int, enqueuers: int) -> dict[str, Any]:
    client = importlib.import_module(module_name).make_client()
    await client.start()
    try:
        # A library whose schema is not created on first use (Procrastinate) creates it
        # here, in the empty schema the harness just reset.
        prepare = getattr(client, "prepare", None)
        if prepare is not None:
            await prepare()
        each = jobs // enqueuers

        async def enqueuer(count: int) -> None:
            for _ in range(count):
                await client.enqueue("noop")

        # Warm-up, not timed: one job per enqueuer, all at once, so the connection pool has
        # grown to what this concurrency uses (the harness does the same for Backburner).
        await asyncio.gather(*(enqueuer(1) for _ in range(enqueuers)))
        started = time.perf_counter()
        await asyncio.gather(*(enqueuer(each) for _ in range(enqueuers)))
        return {"jobs": each * enqueuers, "seconds": time.perf_counter() - started}
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module")
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--enqueuers", type=int, required=True)
    args = parser.parse_args()
    # Libraries that log every enqueue at INFO would be timed doing it.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(run(args.module, args.jobs, args.enqueuers))), flush=True)


if __name__ == "__main__":
    main()
