"""The cheap counts every store keeps for metrics, `info` and the dashboard (SQLite and MySQL by
triggers, PostgreSQL by a log of deltas folded now and then, Redis by a sorted set per state)
equal a full count of the jobs after random transitions, with hypothesis: inserts (unique
keys of every scope), claims, completions, failures retried or not, give-backs, and cancel,
retry and delete by hand (the steps of test_transition_rules_model). The oldest-pending age
is there exactly for the queues with a ready job."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from services import BACKENDS

from backburner.backends.protocol import Backend, BacklogReads, NewJob
from backburner.job import JobState
from tests.contract.model_stores import store_on_loop
from tests.contract.test_transition_rules_model import Driver, Step, steps


async def check_counts(store: Backend, plan: list[Step]) -> None:
    queue = f"q{uuid.uuid4().hex[:10]}"
    driver = Driver(store, queue)
    # A job of another queue that never moves: counts are per queue.
    await store.insert([NewJob(id=f"{queue}x-0", task="t", queue=f"{queue}x", priority=0,
                               args="[]", kwargs="{}", max_attempts=1)])
    for number, step in enumerate(plan):
        await driver.step(step)
        records = await driver.records()
        full = Counter(r[0] for r in records.values() if r is not None)
        counts = await store.counts()
        kept = {state.value: n for (q, state), n in counts.items() if q == queue and n}
        assert kept == dict(full), f"after step {number} {step} of {plan}"
        assert counts[(f"{queue}x", JobState.PENDING)] == 1
        if isinstance(store, BacklogReads):
            ages = await store.oldest_pending()
            assert (queue in ages) == (full["pending"] > 0), f"after step {number} {step}"
            assert ages[f"{queue}x"] >= 0


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_store_counts_what_a_full_count_finds(kind: str, tmp_path: Path) -> None:
    with store_on_loop(kind, tmp_path) as (loop, store):
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(plan=steps)
        def check(plan: list[Step]) -> None:
            loop.run_until_complete(check_counts(store, plan))

        check()
