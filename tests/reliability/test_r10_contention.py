"""R10 at CI size: claim contention. Many worker processes at high concurrency and small
claim batches race for the same jobs; no job may ever be held by two attempts at once, and
every job runs exactly once (nobody died, so there is no reason for a second run)."""

from __future__ import annotations

import pytest
from conftest import ALL_KINDS
from rel_harness import Scenario, check

from backburner import Backburner

pytestmark = pytest.mark.reliability

JOBS = 5000
WORKERS = 3


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_no_job_is_claimed_twice(scenario: Scenario) -> None:
    async def enqueue(app: Backburner) -> list[str]:
        work = app.get_task("rel.work")
        ids: list[str] = []
        for _ in range(JOBS // 1000):
            ids += [j.id for j in await work.enqueue_many([(0,)] * 1000)]
        return ids

    ids = scenario.with_app(enqueue)
    # Small batches and high concurrency: as many racing claims as possible.
    scenario.pool.start(WORKERS, concurrency=50, batch_size=5)
    scenario.wait_all_terminal(120)
    history = scenario.history()
    verdict = check(history, scenario.records(ids), died={})
    assert verdict.double_claims == [] and verdict.overlaps == [], verdict.summary()
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.duplicates == 0, verdict.summary()
    assert history.starts == JOBS
    print(f"FIGURES R10 {scenario.kind}: jobs={JOBS} workers={WORKERS}x50 batch=5 "
          f"starts={history.starts} {verdict.summary()}")
