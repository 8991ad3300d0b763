"""Chains and groups on every backend: steps in order with results handed on, a failure or a
cancel that stops the rest (`dependency_failed`), a group callback with every result in
member order, a retry by hand that lets the flow go on, and the links in the records."""

from __future__ import annotations

import asyncio

import pytest

from backburner import Backburner, ConfigurationError, JobNotFoundError, JobState
from backburner.flows import FlowState
from backburner.job import WAITING_RUN_AT, FailureReason


async def drain(app: Backburner) -> None:
    await asyncio.wait_for(app.run_worker(burst=True, concurrency=4), 30)


async def test_chain_runs_in_order_passing_results(app: Backburner) -> None:
    order: list[str] = []

    @app.task
    async def fetch(n: int) -> dict[str, int]:
        order.append("fetch")
        return {"n": n}

    @app.task
    async def double(data: dict[str, int], by: int = 2) -> int:
        order.append("double")
        return data["n"] * by

    @app.task
    def show(value: int, prefix: str) -> str:
        order.append("show")
        return f"{prefix}{value}"

    @app.task
    async def done() -> str:
        order.append("done")
        return "ok"

    chain = await app.chain(
        fetch.call(21), double.pipe(by=2), show.pipe(prefix="="), done.call()
    )
    ids = [j.id for j in chain.jobs]
    assert len(set(ids)) == 4 and chain.id == ids[0]
    # Every job exists from the start; the later ones wait and are linked.
    second = await app.get_job(ids[1])
    assert second is not None and second.state is JobState.SCHEDULED
    assert second.waiting_on == 1 and second.depends_on == (ids[0],)
    assert second.dependents == (ids[2],) and second.flow_id == ids[0]
    assert second.run_at.timestamp() == WAITING_RUN_AT
    assert (await chain.status()).state is FlowState.PENDING

    await drain(app)
    assert order == ["fetch", "double", "show", "done"]
    assert await chain.result(timeout=5) == "ok"
    assert await chain.jobs[2].result(timeout=5) == "=42"
    status = await chain.status()
    assert status.state is FlowState.COMPLETED and status.failed is None
    third = status.records[2]
    # The handed-over result is in the stored arguments: it survives any restart.
    assert third.args == [42] and third.kwargs == {"prefix": "="}
    assert third.waiting_on == 0 and third.depends_on == (ids[1],)
    first = status.records[0]
    assert first.depends_on == () and first.dependents == (ids[1],)


async def test_failed_step_cancels_the_rest(app: Backburner) -> None:
    ran: list[str] = []

    @app.task
    async def ok() -> int:
        ran.append("ok")
        return 1

    @app.task(retries=1, backoff=0.01)
    async def boom(x: int) -> int:
        ran.append("boom")
        raise RuntimeError("no")

    @app.task
    async def never(x: int) -> None:
        ran.append("never")

    chain = await app.chain(ok.call(), boom.pipe(), never.pipe(), never.call(1))
    for _ in range(3):  # the retry waits out its backoff
        await drain(app)
        if (await chain.status()).state is FlowState.FAILED:
            break
        await asyncio.sleep(0.05)
    assert ran == ["ok", "boom", "boom"]
    status = await chain.status()
    assert status.state is FlowState.FAILED
    assert status.failed is not None and status.failed.id == chain.jobs[1].id
    for record in status.records[2:]:
        assert record.state is JobState.CANCELLED
        assert record.reason is FailureReason.DEPENDENCY_FAILED
        assert record.last_error is not None and record.last_error.type == "DependencyFailed"
    assert status.records[2].last_error.message.startswith(f"job {chain.jobs[1].id}")  # type: ignore[union-attr]


async def test_retry_of_the_failed_step_lets_the_chain_go_on(app: Backburner) -> None:
    fail = {"on": True}

    @app.task
    async def first() -> int:
        return 5

    @app.task(retries=0)
    async def flaky(x: int) -> int:
        if fail["on"]:
            raise RuntimeError("down")
        return x + 1

    @app.task
    async def last(x: int) -> int:
        return x * 10

    chain = await app.chain(first.call(), flaky.pipe(), last.pipe())
    await drain(app)
    assert (await chain.status()).state is FlowState.FAILED
    # The cancelled step itself cannot be retried: it never got its input.
    assert await app.retry(chain.jobs[2].id) is JobState.CANCELLED
    fail["on"] = False
    assert await app.retry(chain.jobs[1].id) is JobState.PENDING
    waiting = await app.get_job(chain.jobs[2].id)
    assert waiting is not None and waiting.state is JobState.SCHEDULED
    assert waiting.waiting_on == 1 and waiting.reason is None
    await drain(app)
    assert await chain.result(timeout=5) == 60
    assert (await chain.status()).state is FlowState.COMPLETED


async def test_cancel_in_the_middle_cancels_what_follows(app: Backburner) -> None:
    ran: list[str] = []

    @app.task
    async def step(name: str) -> None:
        ran.append(name)

    chain = await app.chain(step.call("a"), step.call("b"), step.call("c"))
    assert await app.cancel(chain.jobs[1].id) is JobState.CANCELLED
    await drain(app)
    assert ran == ["a"]
    status = await chain.status()
    assert status.state is FlowState.CANCELLED
    assert [r.state for r in status.records] == [
        JobState.COMPLETED, JobState.CANCELLED, JobState.CANCELLED]
    assert status.records[1].reason is FailureReason.CANCELLED
    assert status.records[2].reason is FailureReason.DEPENDENCY_FAILED


async def test_cancel_of_a_running_step_cancels_what_follows(app: Backburner) -> None:
    started = asyncio.Event()

    @app.task
    async def slow() -> int:
        started.set()
        await asyncio.sleep(30)
        return 1

    @app.task
    async def after(x: int) -> None: ...

    chain = await app.chain(slow.call(), after.pipe())
    worker = asyncio.create_task(app.run_worker(concurrency=2, poll_interval=0.05))
    try:
        await asyncio.wait_for(started.wait(), 10)
        await app.cancel(chain.jobs[0].id)
        record = await chain.jobs[1].wait(timeout=15)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert record.state is JobState.CANCELLED
    assert record.reason is FailureReason.DEPENDENCY_FAILED


async def test_group_callback_gets_every_result_in_member_order(app: Backburner) -> None:
    @app.task
    async def square(x: int) -> int:
        await asyncio.sleep(0.01 * (5 - x))  # finish out of order
        return x * x

    @app.task
    async def total(results: list[int], label: str) -> str:
        return f"{label}:{results}"

    group = await app.group([square.call(x) for x in range(5)], then=total.pipe(label="sq"))
    assert len(group.jobs) == 6 and len(group.members) == 5
    callback = await app.get_job(group.jobs[-1].id)
    assert callback is not None and callback.waiting_on == 5
    assert callback.depends_on == tuple(j.id for j in group.members)
    await drain(app)
    assert await group.result(timeout=5) == "sq:[0, 1, 4, 9, 16]"
    status = await group.status()
    assert status.state is FlowState.COMPLETED
    assert all(r.flow_id == group.id for r in status.records)
    assert status.records[0].dependents == (group.jobs[-1].id,)


async def test_group_callback_made_with_call_gets_no_results(app: Backburner) -> None:
    @app.task
    async def one(x: int) -> int:
        return x

    @app.task
    async def after() -> str:
        return "after"

    group = await app.group([one.call(1), one.call(2)], then=after.call())
    await drain(app)
    assert await group.result(timeout=5) == "after"
    plain = await app.group([one.call(3), one.call(4)])
    await drain(app)
    assert await plain.result(timeout=5) == [3, 4]


async def test_member_failure_cancels_the_callback(app: Backburner) -> None:
    @app.task(retries=0)
    async def member(x: int) -> int:
        if x == 2:
            raise ValueError("bad member")
        return x

    @app.task
    async def callback(results: list[int]) -> None: ...

    group = await app.group([member.call(x) for x in range(4)], then=callback.pipe())
    await drain(app)
    status = await group.status()
    assert status.state is FlowState.FAILED
    assert status.failed is not None and status.failed.id == group.jobs[2].id
    states = [r.state for r in status.records]
    # The other members still ran; the callback never did.
    assert states == [JobState.COMPLETED, JobState.COMPLETED, JobState.FAILED,
                      JobState.COMPLETED, JobState.CANCELLED]
    assert status.records[-1].reason is FailureReason.DEPENDENCY_FAILED


async def test_retry_of_a_failed_member_runs_the_callback(app: Backburner) -> None:
    fail = {"on": True}

    @app.task(retries=0)
    async def member(x: int) -> int:
        if x == 1 and fail["on"]:
            raise ValueError("bad member")
        return x

    @app.task
    async def callback(results: list[int]) -> list[int]:
        return results

    group = await app.group([member.call(x) for x in range(3)], then=callback.pipe())
    await drain(app)
    fail["on"] = False
    await app.retry(group.jobs[1].id)
    await drain(app)
    assert await group.result(timeout=5) == [0, 1, 2]


async def test_flows_refuse_bad_input(app: Backburner) -> None:
    @app.task
    async def a(x: int) -> int:
        return x

    @app.task(queue="other")
    async def b(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="one queue"):
        await app.chain(a.call(1), b.pipe())
    with pytest.raises(ConfigurationError, match="follows nothing"):
        await app.chain(a.pipe())
    with pytest.raises(ConfigurationError, match="at least one"):
        await app.chain()
    with pytest.raises(ConfigurationError, match="at least one"):
        await app.group([])
    with pytest.raises(ConfigurationError, match="unique"):
        await app.chain(a.options(unique=True).call(1))
    with pytest.raises(ConfigurationError, match="delay= and at="):
        await app.chain(a.call(1), a.options(delay=5).call(2))
    with pytest.raises(ConfigurationError, match="delay= and at="):
        await app.group([a.call(1)], then=a.options(delay=5).pipe())
    with pytest.raises(ConfigurationError, match=r"task\.call"):
        await app.chain(a.call(1), (2,))  # type: ignore[arg-type]
    # With queue= every step runs in that queue.
    chain = await app.chain(a.call(1), b.pipe(), queue="q1")
    assert {r.queue for r in (await chain.status()).records} == {"q1"}
    await app.cancel(chain.jobs[0].id)


async def test_a_rescue_that_ends_a_step_cancels_the_rest(app: Backburner) -> None:
    @app.task
    async def step(x: int) -> int:
        return x

    chain = await app.chain(step.call(1), step.pipe(), step.pipe())
    backend = app.backend
    # The first step's worker dies holding it: a short lease, then the rescue ends it
    # (max_lost=1), like a job that keeps killing its workers.
    claim = await backend.claim("w-dead", ["default"], 1, 0.05)
    assert [j.id for j in claim.jobs] == [chain.jobs[0].id] and claim.jobs[0].has_dependents
    for _ in range(100):
        await asyncio.sleep(0.05)
        moved = await backend.rescue_expired(max_lost=1)
        if moved:
            break
    assert [(t.id, t.state) for t in moved] == [(chain.jobs[0].id, JobState.FAILED)]
    status = await chain.status()
    assert [r.reason for r in status.records] == [
        FailureReason.WORKER_LOST, FailureReason.DEPENDENCY_FAILED,
        FailureReason.DEPENDENCY_FAILED]
    assert status.state is FlowState.FAILED


async def test_ordinary_jobs_are_not_flagged(app: Backburner) -> None:
    @app.task
    async def plain() -> None: ...

    await plain.enqueue()
    claim = await app.backend.claim("w", ["default"], 10, 30)
    assert len(claim.jobs) == 1 and not claim.jobs[0].has_dependents
    record = await app.get_job(claim.jobs[0].id)
    assert record is not None and record.flow_id is None and record.depends_on == ()


async def test_deleting_a_job_that_never_ran_cancels_what_waits_for_it(app: Backburner) -> None:
    @app.task
    async def step(x: int) -> int:
        return x

    chain = await app.chain(step.call(1), step.pipe(), step.pipe())
    assert await app.delete(chain.jobs[0].id)
    records = [await app.get_job(j.id) for j in chain.jobs[1:]]
    assert [r.state if r else None for r in records] == [JobState.CANCELLED] * 2
    assert records[0] is not None and records[0].last_error is not None
    assert records[0].last_error.message.endswith("did not complete: deleted")
    assert records[1] is not None and records[1].last_error is not None
    assert records[1].last_error.message.endswith("did not complete: cancelled")


async def test_a_flow_is_found_again_by_its_id(app: Backburner) -> None:
    @app.task
    async def one(x: int) -> int:
        return x

    @app.task
    async def both(results: list[int]) -> int:
        return sum(results)

    chain = await app.chain(one.call(1), one.pipe(), one.pipe())
    group = await app.group([one.call(2), one.call(3)], then=both.pipe())
    found_chain = await app.get_flow(chain.id)
    assert found_chain.kind == "chain" and [j.id for j in found_chain.jobs] == [
        j.id for j in chain.jobs]
    found_group = await app.get_flow(group.id)
    assert found_group.kind == "group"
    assert [j.id for j in found_group.jobs] == [j.id for j in group.jobs]
    await drain(app)
    assert await found_group.result(timeout=5) == 5
    assert await found_chain.result(timeout=5) == 1
    with pytest.raises(ConfigurationError, match="does not start"):
        await app.get_flow(chain.jobs[1].id)
    with pytest.raises(JobNotFoundError):
        await app.get_flow("nope")


async def test_members_completing_at_once_release_the_callback_once(app: Backburner) -> None:
    calls: list[list[int]] = []

    @app.task
    async def member(x: int) -> int:
        await asyncio.sleep(0.01)
        return x

    @app.task
    async def callback(results: list[int]) -> int:
        calls.append(results)
        return len(results)

    group = await app.group([member.call(x) for x in range(40)], then=callback.pipe())
    # Two workers acknowledging in batches at the same time (each in its own transactions).
    await asyncio.wait_for(asyncio.gather(
        app.run_worker(burst=True, concurrency=20),
        app.run_worker(burst=True, concurrency=20),
    ), 30)
    await drain(app)
    assert calls == [list(range(40))]
    assert await group.result(timeout=5) == 40
