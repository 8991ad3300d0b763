"""Rescue with the worker's default timing, on every backend (issue "Reliability defects
found from outside", D4): a dead leader kept the lead for 2 x rescue_interval (30 s) while the
others asked every rescue_interval (15 s), and the leader swept every 15 s, so a dead
worker's job could wait lease + 15 s and more (no sweep at all during a storm of restarts).

A "dead worker" here is a worker id that took the lead and/or a job on a 1 s lease and never
renewed them. A live worker with the default 30 s lease must restart that job within a few
seconds of the lapse: a bound on rescue (correctness), not a speed measurement."""

from __future__ import annotations

import asyncio

import pytest

from backburner import Backburner, JobState

DEAD_LEASE = 1.0
BOUND = DEAD_LEASE + 6.0
"""Lapse, then a non-leader's next try at the lead (1 s) or the leader's next sweep (5 s)."""


@pytest.mark.parametrize("dead_leader", [True, False], ids=["dead-leader", "dead-worker"])
async def test_a_dead_workers_job_restarts_soon_after_its_lease(
    app: Backburner, dead_leader: bool
) -> None:
    @app.task(retries=0)
    async def step() -> str:
        return "done"

    job = await step.enqueue()
    claim = await app.backend.claim("dead-worker", ["default"], 1, DEAD_LEASE)
    assert [j.id for j in claim.jobs] == [job.id]
    if dead_leader:
        assert await app.backend.lead("dead-worker", DEAD_LEASE)
    worker = app.worker(handle_signals=False)  # lease 30 s, every other option its default
    run = asyncio.create_task(worker.run())
    try:
        assert await job.result(timeout=BOUND) == "done"
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
    record = await job.info()
    assert record.state is JobState.COMPLETED and record.lost == 1 and record.attempt == 2


async def test_the_max_lost_limit_says_it_stopped_a_poison_job(app: Backburner) -> None:
    """`max_lost` overrides `retries`: the last error must say so, not only that a worker
    stopped renewing its lease (which the earlier deaths say)."""

    @app.task(retries=10)
    async def poison() -> None:
        raise AssertionError("never run here: dead workers claim it")

    job = await poison.enqueue()
    for death in range(1, 4):
        claim = await app.backend.claim(f"dead-{death}", ["default"], 1, 0.05, alone=True)
        assert [j.id for j in claim.jobs] == [job.id]
        await asyncio.sleep(0.1)
        moved = await app.backend.rescue_expired(3)
        assert [t.id for t in moved] == [job.id]
    record = await job.info()
    assert record.state is JobState.FAILED and record.lost == 3 and record.failures == 0
    messages = [e.message for e in record.errors]
    assert messages[:2] == ["the worker holding this attempt stopped renewing its lease"] * 2
    assert messages[2].startswith("stopped as a poison job after 3 worker deaths"), messages
