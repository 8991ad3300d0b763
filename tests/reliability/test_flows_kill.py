"""Chains and groups survive a SIGKILLed worker, on SQLite and the server backends: a worker
dies while a chain's middle step and a group's member run; a new worker finishes both
flows, every step completes exactly once, in order, with the results handed on."""

from __future__ import annotations

import itertools

import pytest
from conftest import ALL_KINDS
from rel_harness import Scenario

from backburner import Backburner, JobState

pytestmark = pytest.mark.reliability

SLOW = 60.0
"""Seconds attempt 1 of the slow step and member would take: they are killed before."""


async def _create(app: Backburner) -> dict[str, list[str]]:
    step = app.get_task("rel.flow_step")
    member = app.get_task("rel.flow_member")
    gather = app.get_task("rel.flow_gather")
    chain = await app.chain(
        step.call([], "a", 0.05), step.pipe("b", 0.05), step.pipe("c", SLOW),
        step.pipe("d", 0.05), step.pipe("e", 0.05),
    )
    group = await app.group(
        [member.call(x, SLOW if x == 1 else 0.05) for x in range(4)], then=gather.pipe()
    )
    return {"chain": [j.id for j in chain.jobs], "group": [j.id for j in group.jobs]}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)
def test_a_worker_killed_in_the_middle_of_a_chain_and_a_group(scenario: Scenario) -> None:
    ids = scenario.with_app(_create)
    chain, group = ids["chain"], ids["group"]
    victim = scenario.pool.start(1, concurrency=8, lease=2, poll_interval=0.5)[0]
    slow = (chain[2], group[1])

    def both_slow_started() -> bool:
        history = scenario.history()
        return all(history.of(job) for job in slow)

    scenario.wait_for(both_slow_started, 30, "the slow step and member to start")
    # The steps before the slow one completed and released it, in this worker.
    assert [scenario.record(j).state for j in chain[:2]] == [JobState.COMPLETED] * 2
    scenario.pool.kill(victim)
    scenario.pool.start(1, concurrency=8, lease=2, poll_interval=0.5)
    scenario.wait_all_terminal(60)

    records = scenario.records([*chain, *group])
    assert all(r is not None and r.state is JobState.COMPLETED for r in records.values()), {
        j: (r.state, r.reason) for j, r in records.items() if r is not None}
    last = records[chain[-1]]
    assert last is not None and last.result == ["a", "b", "c", "d", "e"]
    callback = records[group[-1]]
    assert callback is not None and callback.result == [0, 1, 2, 3]
    history = scenario.history()
    assert history.double_starts == []
    for job in [*chain, *group]:
        attempts = history.of(job)
        completed = [a for a in attempts if a.outcome == "ok"]
        assert len(completed) == 1, (job, attempts)
        if job in slow:
            # Attempt 1 died with its worker; the rescue gave attempt 2 to the new worker.
            assert [a.attempt for a in attempts] == [1, 2] and attempts[0].end is None
        else:
            assert len(attempts) == 1, (job, attempts)
    # Each chain step started only after the one before it had ended.
    for before, after in itertools.pairwise(chain):
        done = [a for a in history.of(before) if a.outcome == "ok"][0]
        assert done.end is not None and history.of(after)[0].start >= done.end
    codes = scenario.pool.stop_all()
    assert all(code == 0 for pid, code in codes.items() if pid != victim.pid), codes
