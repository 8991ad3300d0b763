"""R6 at CI size: a Redis server killed (SIGKILL) and restarted mid-run.

A private redis-server with `appendonly yes, appendfsync always` (so an acknowledged write is
on disk before the reply) serves two worker processes while a client keeps enqueueing one job
at a time. Every enqueue that returned is acknowledged and must complete; the ones that
failed during the outage raised BackendUnavailableError and were not acknowledged. Workers
must not exit, must reconnect within 10 s of the restart, and jobs in flight at the crash are
recovered (acknowledgements retried, lost claims rescued after their lease)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer
from rel_harness import DB_ENV, Scenario, check

from backburner import Backburner, BackendUnavailableError

pytestmark = pytest.mark.reliability

JOBS = 300
DOWN = 3.0


class Enqueuer(threading.Thread):
    """Enqueues one job at a time until stopped; remembers what was acknowledged."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(daemon=True)
        self.scenario = scenario
        self.acknowledged: list[str] = []
        self.refused = 0
        self.halt = threading.Event()

    def run(self) -> None:
        async def loop(app: Backburner) -> None:
            task = app.get_task("rel.work")
            while not self.halt.is_set():
                try:
                    job = await task.enqueue(20)
                except BackendUnavailableError:
                    self.refused += 1
                    await asyncio.sleep(0.05)
                    continue
                self.acknowledged.append(job.id)
                await asyncio.sleep(0.005)

        self.scenario.with_app(loop)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """Requested before `scenario`, so it is still up when the scenario cleans its keys."""
    with RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always",
                     "--maxmemory-policy", "noeviction") as running:
        yield running


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scenario", ["redis"], indirect=True)
def test_a_redis_restart_loses_nothing_acknowledged(
    server: RedisServer, scenario: Scenario
) -> None:
    scenario.url = f"{server.url}?prefix=r6&profile=durable"
    scenario.pool.env[DB_ENV] = scenario.url

    async def enqueue(app: Backburner) -> list[str]:
        jobs = await app.get_task("rel.work").enqueue_many([(30,)] * JOBS)
        return [j.id for j in jobs]

    first = scenario.with_app(enqueue)
    workers = scenario.pool.start(2, concurrency=8, lease=3.0)
    scenario.wait_for(lambda: scenario.states().get("completed", 0) >= 30, 30,
                      "the workers to get going")
    enqueuer = Enqueuer(scenario)
    enqueuer.start()
    time.sleep(0.5)

    server.kill()
    killed_at = time.monotonic()
    time.sleep(DOWN)
    assert all(w.alive() for w in workers), scenario.pool.logs()[-4000:]
    server.start()  # replays the AOF: everything acknowledged before the kill
    restarted_at = time.monotonic()
    before = scenario.states().get("completed", 0)
    resumed_at = scenario.wait_for(
        lambda: scenario.states().get("completed", 0) > before, 30, "work to resume"
    )
    time.sleep(0.5)
    enqueuer.halt.set()
    enqueuer.join(20)
    assert not enqueuer.is_alive()
    scenario.wait_all_terminal(60)
    assert all(w.alive() for w in workers), "a worker exited during the restart"

    ids = first + enqueuer.acknowledged
    verdict = check(scenario.history(), scenario.records(ids), died={})
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.overlaps == [] and verdict.stale_writes == [], verdict.summary()
    assert verdict.double_claims == [], verdict.summary()
    assert enqueuer.refused > 0, "the outage was not seen by the enqueuer"
    assert resumed_at - restarted_at < 10.0
    codes = scenario.pool.stop_all()
    assert set(codes.values()) == {0}, scenario.pool.logs()[-4000:]
    print(f"FIGURES R6 redis: down={restarted_at - killed_at:.1f}s "
          f"acknowledged={len(ids)} refused_during_outage={enqueuer.refused} "
          f"resumed_after={resumed_at - restarted_at:.2f}s {verdict.summary()}")
