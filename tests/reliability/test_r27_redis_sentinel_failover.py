"""R27: Redis Sentinel. Three sentinels watch one primary and one replica (service
`mymaster`); two workers run on a `redis+sentinel://` URL. The primary is killed (SIGKILL)
mid-run: the sentinels promote the replica and the workers follow by themselves (redis-py's
sentinel pool asks the sentinels for the primary's address at each new connection). No worker
exits, every job completes, and the stall (kill -> first job completed after it) is measured.

The jobs are enqueued before the workers start, with `wait_replicas=1`, so the replica holds
all of them when the primary dies (what R26 measures without it is not the point here)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_cluster import SentinelSetup
from redis_server import redis_server_binary
from rel_harness import DB_ENV, Scenario, check

from backburner import Backburner, BackendUnavailableError

pytestmark = pytest.mark.reliability

JOBS = 400


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSetup]:
    """Requested before `scenario`, so it is still up when the scenario cleans its keys."""
    redis_server_binary()  # fails under CI, skips loudly elsewhere, when Redis is missing
    with SentinelSetup(tmp_path / "sentinel") as running:
        yield running


@pytest.mark.timeout(180)
@pytest.mark.parametrize("scenario", ["redis"], indirect=True)
def test_workers_follow_a_sentinel_promotion(
    sentinels: SentinelSetup, scenario: Scenario
) -> None:
    scenario.url = sentinels.url("prefix=r27&profile=durable")
    scenario.pool.env[DB_ENV] = scenario.url
    enqueue_url = sentinels.url("prefix=r27&wait_replicas=1")

    async def enqueue(app: Backburner) -> list[str]:
        from rel_app import build_app

        async with build_app(enqueue_url) as waiting:
            jobs = await waiting.get_task("rel.work").enqueue_many([(15,)] * JOBS)
        return [j.id for j in jobs]

    ids = scenario.with_app(enqueue)
    old_port = sentinels.primary.port
    workers = scenario.pool.start(2, concurrency=4, lease=3.0)
    scenario.wait_for(lambda: scenario.states().get("completed", 0) >= JOBS // 4, 60,
                      "the workers to get going")
    before = scenario.states().get("completed", 0)
    sentinels.primary.kill()
    killed_at = time.monotonic()
    promoted_at = scenario.wait_for(lambda: sentinels.primary_port() != old_port, 60,
                                    "the sentinels to promote the replica", every=0.05)
    resumed_at = scenario.wait_for(lambda: _completed(scenario) > before, 60, "work to resume")
    scenario.wait_all_terminal(90)
    assert all(w.alive() for w in workers), scenario.pool.logs()[-4000:]
    verdict = check(scenario.history(), scenario.records(ids), died={})
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.overlaps == [] and verdict.stale_writes == [], verdict.summary()
    assert verdict.double_claims == [], verdict.summary()
    codes = scenario.pool.stop_all()
    assert set(codes.values()) == {0}, scenario.pool.logs()[-4000:]
    print(f"FIGURES R27 redis sentinel: promoted_after={promoted_at - killed_at:.2f}s "
          f"stall={resumed_at - killed_at:.2f}s (kill -> first job completed after it) "
          f"{verdict.summary()}")


def _completed(scenario: Scenario) -> int:
    """Completed jobs, or -1 while the test's own reads meet the failover (the sentinels may
    name no primary for a moment even after they announced the new one)."""
    try:
        return scenario.states().get("completed", 0)
    except BackendUnavailableError:
        return -1
