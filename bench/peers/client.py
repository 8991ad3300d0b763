"""The enqueuing side of every scenario, run by the harness inside a library's virtualenv:

    <venv>/bin/python bench/peers/client.py MODULE COMMAND [--task noop|sleep] [--jobs N] ...

MODULE is a `<peer>_app` module next to this file; its `make_client()` returns an object
with the `PeerClient` methods below. The command prints one JSON line (seconds taken, or
latency samples) and exits; the harness enforces the time limit.

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
from typing import Any, Protocol


class PeerClient(Protocol):
    bulk_api: str | None
    """How the library enqueues many jobs at once, or None when it has no such API."""

    async def start(self) -> None:
        """Connect; create schemas or consumer groups the library needs before enqueueing."""

    async def close(self) -> None: ...

    async def enqueue(self, task: str) -> None:
        """Enqueue one job of task `noop` or `sleep` (no arguments)."""

    async def enqueue_bulk(self, task: str, count: int) -> None:
        """Enqueue `count` jobs with the library's bulk API (only if `bulk_api`)."""

    async def roundtrip(self, timeout: float) -> None:
        """Enqueue a `ping` job and wait until its result is visible to this client."""


async def enqueue(client: PeerClient, task: str, jobs: int) -> dict[str, Any]:
    started = time.perf_counter()
    for _ in range(jobs):
        await client.enqueue(task)
    return {"seconds": time.perf_counter() - started}


async def bulk(client: PeerClient, task: str, jobs: int, batch: int) -> dict[str, Any]:
    if client.bulk_api is None:
        return {"na": "no bulk enqueue API"}
    started = time.perf_counter()
    for first in range(0, jobs, batch):
        await client.enqueue_bulk(task, min(batch, jobs - first))
    return {"seconds": time.perf_counter() - started, "api": client.bulk_api}


async def fill(client: PeerClient, task: str, jobs: int, batch: int) -> dict[str, Any]:
    """Queue jobs for a drain, as fast as the library allows (not a measurement)."""
    if client.bulk_api is not None:
        return await bulk(client, task, jobs, batch)
    return await enqueue(client, task, jobs)


async def latency(client: PeerClient, samples: int, warmup: int) -> dict[str, Any]:
    # The first round trip waits out the worker's start-up; the warm-up ones open
    # connections and fill caches on both sides. Neither is counted.
    await client.roundtrip(timeout=60.0)
    timings = []
    for n in range(warmup + samples):
        started = time.perf_counter()
        await client.roundtrip(timeout=10.0)
        if n >= warmup:
            timings.append(time.perf_counter() - started)
    return {"samples": timings}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    module = importlib.import_module(args.module)
    client: PeerClient = module.make_client()
    await client.start()
    try:
        if args.command == "setup":
            # Optional: a library whose schema is not created on first use (Procrastinate).
            prepare = getattr(client, "prepare", None)
            if prepare is not None:
                await prepare()
            return {}
        if args.command == "enqueue":
            return await enqueue(client, args.task, args.jobs)
        if args.command == "bulk":
            return await bulk(client, args.task, args.jobs, args.batch)
        if args.command == "fill":
            return await fill(client, args.task, args.jobs, args.batch)
        return await latency(client, args.samples, args.warmup)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module")
    parser.add_argument("command", choices=("setup", "enqueue", "bulk", "fill", "latency"))
    parser.add_argument("--task", choices=("noop", "sleep"), default="noop")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    # Libraries that log every enqueue at INFO would be timed doing it.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
