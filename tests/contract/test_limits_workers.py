"""Global limits with real workers: three Worker instances, each with its own app (and, on the
server and file backends, its own connections to the store), run limited tasks at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from backburner import Backburner, Worker
from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend
from backburner.job import JobState

WORKERS = 3


class Probe:
    """What the tasks saw: how many ran at once (overall and per key), when each started."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.starts: list[float] = []

    async def run(self, key: str, seconds: float) -> None:
        self.starts.append(time.monotonic())
        for name in ("*", key):
            self.running[name] = self.running.get(name, 0) + 1
            self.peak[name] = max(self.peak.get(name, 0), self.running[name])
        try:
            await asyncio.sleep(seconds)
        finally:
            for name in ("*", key):
                self.running[name] -= 1


def apps_on(backend: Backend, define: Callable[[Backburner], None]) -> list[Backburner]:
    # A poll interval far beyond the test's length: a job that waits for a slot must be woken
    # when the slot frees (or, for a rate, at the time its claim named), never found by a poll.
    apps = []
    for _ in range(WORKERS):
        if isinstance(backend, MemoryBackend):
            app = Backburner(backend=backend, poll_interval=60)
        else:
            app = Backburner(backend.url, poll_interval=60)
        define(app)
        apps.append(app)
    return apps


@pytest.fixture
def probe() -> Probe:
    return Probe()


async def run_until_done(apps: list[Backburner], ids: list[str], timeout: float) -> None:
    workers = [Worker(app, concurrency=10, lease=10, handle_signals=False) for app in apps]
    runs = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(timeout):
            while True:
                records = [await apps[0].backend.get(i) for i in ids]
                if all(r is not None and r.state.is_terminal for r in records):
                    break
                await asyncio.sleep(0.05)
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*runs)
        records = [await apps[0].backend.get(i) for i in ids]
        for app in apps:
            if not isinstance(app.backend, MemoryBackend):  # the fixture closes that one
                await app.close()
    assert all(r is not None and r.state is JobState.COMPLETED for r in records)


async def test_concurrency_is_held_across_workers(backend: Backend, probe: Probe) -> None:
    def define(app: Backburner) -> None:
        @app.task(name="limits.slow", concurrency=2)
        async def slow(n: int) -> None:
            await probe.run("slow", 0.05)

        @app.task(name="limits.free")
        async def free(n: int) -> None:
            await probe.run("free", 0.05)

    apps = apps_on(backend, define)
    await apps[0].open()
    slow, free = apps[0].get_task("limits.slow"), apps[0].get_task("limits.free")
    # The limited jobs first: the free ones behind them must run beside them all the same.
    ids = [j.id for j in await slow.enqueue_many([(n,) for n in range(12)])]
    ids += [j.id for j in await free.enqueue_many([(n,) for n in range(6)])]
    await run_until_done(apps, ids, 20)
    assert probe.peak["slow"] == 2
    assert probe.peak["free"] >= 2  # beside the limited ones, not after them


async def test_concurrency_per_key_across_workers(backend: Backend, probe: Probe) -> None:
    def define(app: Backburner) -> None:
        def key(customer: int) -> str:
            return f"customer:{customer}"

        @app.task(name="limits.per_key", concurrency_per_key=1, concurrency_key=key)
        async def per_key(customer: int) -> None:
            await probe.run(key(customer), 0.05)

    apps = apps_on(backend, define)
    await apps[0].open()
    task = apps[0].get_task("limits.per_key")
    ids = [j.id for j in await task.enqueue_many([(c % 3,) for c in range(12)])]
    await run_until_done(apps, ids, 20)
    assert [probe.peak[f"customer:{c}"] for c in range(3)] == [1, 1, 1]
    assert probe.peak["*"] > 1


async def test_rate_limit_across_workers(backend: Backend, probe: Probe) -> None:
    def define(app: Backburner) -> None:
        @app.task(name="limits.rated", rate_limit="5/s")
        async def rated(n: int) -> None:
            await probe.run("rated", 0.0)

    apps = apps_on(backend, define)
    await apps[0].open()
    task = apps[0].get_task("limits.rated")
    ids = [j.id for j in await task.enqueue_many([(n,) for n in range(12)])]
    await run_until_done(apps, ids, 20)
    assert len(probe.starts) == 12
    # Judged by the claims' times on the store's clock, as the limit is: the times the tasks
    # note lag their claims by however long the worker took to start them, and on a slow
    # machine a first batch started late came within 0.9 s of the second (10 in a window).
    records = [await backend.get(job_id) for job_id in ids]
    starts = sorted(r.started_at.timestamp() for r in records
                    if r is not None and r.started_at is not None)
    assert len(starts) == 12
    # At most 5 starts in any window a little shorter than the period.
    most = max(sum(1 for t in starts if s <= t < s + 0.99) for s in starts)
    assert most <= 5
    # 12 jobs at 5 per second: the third batch cannot start before 2 s have passed.
    assert starts[-1] - starts[0] >= 1.95
