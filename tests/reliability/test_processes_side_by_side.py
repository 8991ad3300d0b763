"""Real processes side by side, on every backend: 3 worker processes and 1 enqueuing process
(one by one and in batches, while the workers run). Everything the enqueuer had acknowledged
runs exactly once, nobody dies, and the workers pick work up by notification (the poll
interval is set far longer than the whole test)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable

import pytest
from conftest import ALL_KINDS
from rel_harness import Scenario, check

from backburner import Backburner

pytestmark = pytest.mark.reliability

SINGLES = 600
BATCHES = 6
BATCH = 200

ENQUEUER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import rel_app

    async def main() -> None:
        ids = []
        async with rel_app.build_app(os.environ["RELIABILITY_DB"]) as app:
            work = app.get_task("rel.work")
            for round in range({batches}):
                for _ in range({singles} // {batches}):
                    ids.append((await work.enqueue(1)).id)
                ids += [j.id for j in await work.enqueue_many([(1,)] * {batch})]
        json.dump(ids, sys.stdout)

    asyncio.run(main())
    """
).format(singles=SINGLES, batches=BATCHES, batch=BATCH)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_three_workers_and_an_enqueuer(scenario: Scenario) -> None:
    workers = scenario.pool.start(3, concurrency=20, poll_interval=600)
    scenario.wait_for(lambda: bool(scenario.with_app(_workers_registered(3))), 30,
                      "three workers to register")
    done = subprocess.run(
        [sys.executable, "-c", ENQUEUER], env=scenario.env, capture_output=True, timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    ids: list[str] = json.loads(done.stdout)
    assert len(ids) == SINGLES + BATCHES * BATCH
    scenario.wait_all_terminal(120)
    assert all(w.alive() for w in workers), scenario.pool.logs()[-4000:]
    history = scenario.history()
    verdict = check(history, scenario.records(ids), died={})
    assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
    assert verdict.double_claims == [] and verdict.overlaps == [], verdict.summary()
    assert verdict.duplicates == 0 and history.starts == len(ids), verdict.summary()
    pids = {a.pid for attempts in history.attempts.values() for a in attempts.values()}
    assert len(pids) == 3, f"work reached {len(pids)} of 3 workers"
    codes = scenario.pool.stop_all()
    assert set(codes.values()) == {0}, scenario.pool.logs()[-4000:]
    print(f"FIGURES side-by-side {scenario.kind}: 3 workers + 1 enqueuer, jobs={len(ids)} "
          f"workers_used={len(pids)} {verdict.summary()}")


def _workers_registered(count: int) -> Callable[[Backburner], Awaitable[bool]]:
    async def body(app: Backburner) -> bool:
        return len(await app.backend.list_workers()) >= count

    return body
