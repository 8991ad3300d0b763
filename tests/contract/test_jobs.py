"""Job behaviour through the public API, on every backend: enqueue, run, retry, time out,
cancel, report progress, and refuse bad payloads."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from backburner import (
    Backburner,
    Backoff,
    InvalidArgumentsError,
    JobCancelledError,
    JobContext,
    JobFailedError,
    JobState,
    RetryLater,
)
from backburner.backends.protocol import Backend, NewJob
from backburner.job import FailureReason


class User(BaseModel):
    name: str
    age: int


FAST = Backoff(base=0.05, factor=2, jitter=0)


async def drain(app: Backburner, **options: object) -> None:
    options.setdefault("concurrency", 8)
    await asyncio.wait_for(app.run_worker(burst=True, **options), 30)


async def test_async_and_sync_tasks_complete_with_results(app: Backburner) -> None:
    seen_threads: list[str] = []

    @app.task
    async def add(a: int, b: int = 1) -> int:
        return a + b

    @app.task
    def shout(text: str) -> str:
        seen_threads.append(threading.current_thread().name)
        return text.upper()

    j1 = await add.enqueue(2, b=3)
    j2 = await shout.enqueue("hi")
    await drain(app)
    assert await j1.result(timeout=5) == 5
    assert await j2.result(timeout=5) == "HI"
    assert seen_threads and seen_threads[0] != threading.main_thread().name
    record = await j1.info()
    assert record.state is JobState.COMPLETED and record.attempt == 1
    assert record.kwargs == {"a": 2, "b": 3}
    assert record.started_at is not None and record.finished_at is not None


async def test_enqueue_many_runs_every_call(app: Backburner) -> None:
    done: list[str] = []

    @app.task
    def send(to: str, subject: str = "hi") -> None:
        done.append(f"{to}:{subject}")

    jobs = await send.enqueue_many(
        [("a@x.io",), {"to": "b@x.io", "subject": "yo"}, send.call("c@x.io", subject="s")]
    )
    assert len(jobs) == 3
    await drain(app)
    assert sorted(done) == ["a@x.io:hi", "b@x.io:yo", "c@x.io:s"]


async def test_enqueue_rejects_bad_arguments_naming_them(app: Backburner) -> None:
    @app.task
    async def resize(path: str, width: int) -> None: ...

    with pytest.raises(InvalidArgumentsError, match="'width'"):
        await resize.enqueue("a.png", width="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentsError, match="width"):
        await resize.enqueue("a.png")  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentsError, match=r"unexpected|got an unexpected"):
        await resize.enqueue("a.png", 1, height=2)  # type: ignore[call-arg]

    @app.task
    async def anything(value: object) -> None: ...

    with pytest.raises(InvalidArgumentsError, match=r"'value'.*JSON"):
        await anything.enqueue(object())
    with pytest.raises(InvalidArgumentsError):
        await resize.enqueue_many([("ok.png", 1), ("bad.png", "wide")])
    assert (await app.list_jobs()).jobs == []  # nothing half-stored


async def test_rich_argument_types_round_trip(app: Backburner) -> None:
    seen: list[object] = []

    @app.task
    async def greet(user: User, when: datetime) -> dict[str, object]:
        seen.append((user, when))
        return {"name": user.name}

    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    job = await greet.enqueue(User(name="Ada", age=36), when)
    await drain(app)
    assert await job.result(timeout=5) == {"name": "Ada"}
    assert seen == [(User(name="Ada", age=36), when)]


async def test_failures_retry_with_backoff_then_fail(app: Backburner) -> None:
    calls: list[float] = []

    @app.task(retries=2, backoff=FAST)
    async def flaky() -> None:
        calls.append(time.monotonic())
        raise ValueError(f"try {len(calls)}")

    job = await flaky.enqueue()
    for _ in range(3):
        await drain(app)
        await asyncio.sleep(0.25)
    await drain(app)
    record = await job.info()
    assert record.state is JobState.FAILED and record.reason is FailureReason.ERROR
    assert len(calls) == 3 == record.max_attempts == record.failures
    assert [e.message for e in record.errors] == ["try 1", "try 2", "try 3"]
    assert all(e.traceback and "ValueError" in e.traceback for e in record.errors)
    with pytest.raises(JobFailedError, match="try 3"):
        await job.result(timeout=1)


async def test_retry_on_limits_which_errors_are_retried(app: Backburner) -> None:
    @app.task(retries=5, retry_on=ConnectionError, backoff=FAST)
    async def strict(kind: str) -> None:
        raise (ConnectionError if kind == "net" else KeyError)(kind)

    fatal = await strict.enqueue("key")
    transient = await strict.enqueue("net")
    await drain(app)
    assert (await fatal.info()).state is JobState.FAILED
    assert (await transient.info()).state is JobState.SCHEDULED


async def test_task_can_ask_to_retry_later(app: Backburner) -> None:
    attempts: list[int] = []

    @app.task(retries=3)
    async def polite(ctx: JobContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RetryLater(delay=0.1)
        return "done"

    job = await polite.enqueue()
    await drain(app)
    record = await job.info()
    assert record.state is JobState.SCHEDULED
    assert record.errors[0].reason is FailureReason.RETRY_REQUESTED
    await asyncio.sleep(0.15)
    await drain(app)
    assert await job.result(timeout=1) == "done"
    assert attempts == [1, 2]


async def test_async_timeout_cancels_and_frees_the_slot(app: Backburner) -> None:
    @app.task(timeout=0.2, retries=0)
    async def hang() -> None:
        await asyncio.sleep(60)

    @app.task
    async def quick() -> str:
        return "ok"

    slow = await hang.enqueue()
    fast = await quick.enqueue()
    started = time.monotonic()
    await asyncio.wait_for(app.run_worker(burst=True, concurrency=1), 10)
    assert time.monotonic() - started < 5
    record = await slow.info()
    assert record.state is JobState.FAILED and record.reason is FailureReason.TIMEOUT
    assert await fast.result(timeout=1) == "ok"


async def test_sync_timeout_frees_the_slot_and_signals_the_thread(app: Backburner) -> None:
    stopped = threading.Event()

    @app.task(timeout=0.2, retries=0)
    def grind(ctx: JobContext) -> None:
        for _ in range(100):
            if ctx.cancelled:
                stopped.set()
                return
            time.sleep(0.02)

    job = await grind.enqueue()
    await drain(app, concurrency=1)
    record = await job.info()
    assert record.state is JobState.FAILED and record.reason is FailureReason.TIMEOUT
    assert await asyncio.to_thread(stopped.wait, 2)


async def test_timeout_option_per_enqueue(app: Backburner) -> None:
    @app.task(retries=0)
    async def nap(seconds: float) -> None:
        await asyncio.sleep(seconds)

    job = await nap.options(timeout=0.1).enqueue(5)
    await drain(app)
    assert (await job.info()).reason is FailureReason.TIMEOUT


async def test_progress_is_stored_and_published(app: Backburner) -> None:
    @app.task
    async def steps(n: int, ctx: JobContext) -> int:
        for i in range(1, n + 1):
            await ctx.progress(i, total=n, message=f"step {i}")
        return n

    @app.task
    def sync_steps(ctx: JobContext) -> None:
        ctx.set_progress(1, total=2, message="sync")

    job = await steps.enqueue(4)
    sync_job = await sync_steps.enqueue()
    events = []
    with app.backend.notifier.subscribe(["job"], job_id=job.id) as sub:
        await drain(app)
        events = sub.drain()
    record = await job.info()
    assert record.progress is not None and record.progress.percent == 100
    assert record.progress.message == "step 4"
    percents = [e.progress["current"] for e in events if e.progress]
    assert percents == [1, 2, 3, 4]
    assert events[-1].state == "completed"
    sync_record = await sync_job.info()
    assert sync_record.progress is not None and sync_record.progress.message == "sync"


async def test_cancel_pending_and_running_jobs(app: Backburner) -> None:
    started = asyncio.Event()

    @app.task
    async def long(ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(60)

    waiting = await long.options(delay=60).enqueue()
    assert await waiting.cancel() is JobState.CANCELLED
    with pytest.raises(JobCancelledError):
        await waiting.result(timeout=1)

    running = await long.enqueue()
    # Heartbeats are 10 s apart: the cancel request must arrive by notification.
    worker = app.worker(concurrency=2, handle_signals=False)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    assert await running.cancel() is JobState.RUNNING
    record = await running.wait(timeout=5)
    assert record.state is JobState.CANCELLED
    worker.stop()
    await asyncio.wait_for(run, 5)


async def test_unknown_task_and_invalid_payload_fail_without_retry(app: Backburner) -> None:
    @app.task(retries=5)
    async def typed(n: int) -> int:
        return n

    await app.backend.insert([
        NewJob("id-unknown", "nobody.registered.this", "default", 0, "[]", "{}", 6),
        NewJob("id-badjson", typed.name, "default", 0, "\x80\x04pickle", "{}", 6),
        NewJob("id-badargs", typed.name, "default", 0, "[]", '{"n": "not a number"}', 6),
    ])
    await drain(app)
    reasons = {}
    for job_id in ("id-unknown", "id-badjson", "id-badargs"):
        record = await app.get_job(job_id)
        assert record is not None and record.state is JobState.FAILED
        reasons[job_id] = record.reason
    assert reasons == {
        "id-unknown": FailureReason.UNKNOWN_TASK,
        "id-badjson": FailureReason.INVALID_PAYLOAD,
        "id-badargs": FailureReason.INVALID_PAYLOAD,
    }


async def test_unserialisable_result_fails_the_job(app: Backburner) -> None:
    @app.task(retries=0)
    async def weird() -> object:
        return object()

    job = await weird.enqueue()
    await drain(app)
    record = await job.info()
    assert record.state is JobState.FAILED and "JSON" in record.errors[0].message


async def test_failed_job_can_be_retried_by_hand(app: Backburner) -> None:
    state = {"fail": True}

    @app.task(retries=0)
    async def once() -> str:
        if state["fail"]:
            raise RuntimeError("down")
        return "up"

    job = await once.enqueue()
    await drain(app)
    assert (await job.info()).state is JobState.FAILED
    state["fail"] = False
    assert await app.retry(job.id) is JobState.PENDING
    await drain(app)
    assert await job.result(timeout=1) == "up"


async def test_priorities_and_delays_through_options(app: Backburner) -> None:
    order: list[str] = []

    @app.task
    async def record(name: str) -> None:
        order.append(name)

    await record.enqueue("low")
    await record.options(priority=10).enqueue("high")
    later = await record.options(delay=0.2).enqueue("later")
    assert later.initial_state is JobState.SCHEDULED
    await asyncio.wait_for(app.run_worker(burst=True, concurrency=1), 10)
    assert order == ["high", "low"]
    await asyncio.sleep(0.25)
    await drain(app)
    assert order == ["high", "low", "later"]


async def test_result_waiter_wakes_on_completion(app: Backburner) -> None:
    @app.task
    async def echo(x: int) -> int:
        return x

    worker = app.worker(concurrency=4, handle_signals=False, poll_interval=5)
    run = asyncio.create_task(worker.run())
    try:
        for i in range(20):
            job = await echo.enqueue(i)
            assert await job.result(timeout=2) == i  # far below the 5 s poll: woken
    finally:
        worker.stop()
        await asyncio.wait_for(run, 5)


async def test_graceful_stop_releases_jobs_past_the_grace_period(app: Backburner) -> None:
    started = asyncio.Event()

    @app.task
    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    job = await slow.enqueue()
    worker = app.worker(concurrency=1, grace=0.1, handle_signals=False)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(run, 5)
    record = await job.info()
    assert record.state is JobState.PENDING and record.failures == 0 and record.lost == 0


async def test_a_poison_job_does_not_take_its_neighbours_down(app: Backburner) -> None:
    """Simulates a worker dying with three jobs leased: afterwards each runs alone, so the
    innocent ones complete while the poison keeps dying until it fails `worker_lost`."""
    ran: list[str] = []

    @app.task
    async def step(name: str) -> str:
        ran.append(name)
        return name

    jobs = [await step.enqueue(n) for n in ("poison", "a", "b")]
    backend = app.backend
    claim = await backend.claim("doomed", ["default"], 10, 0.05)
    assert len(claim.jobs) == 3
    await asyncio.sleep(0.1)
    await backend.rescue_expired(max_lost=3)
    worker = app.worker(concurrency=10, handle_signals=False)
    run = asyncio.create_task(worker.run())
    try:
        for job in jobs:
            await job.result(timeout=5)
    finally:
        worker.stop()
        await asyncio.wait_for(run, 5)
    assert sorted(ran) == ["a", "b", "poison"]
    for job in jobs:
        record = await job.info()
        assert record.lost == 1 and record.attempt == 2


async def test_a_claim_whose_reply_was_lost_is_released_and_runs(
    app: Backburner, backend: Backend
) -> None:
    ran = asyncio.Event()

    @app.task
    async def mark() -> None:
        ran.set()

    job = await mark.enqueue()
    # The store committed this claim for the worker, but the reply never reached it (the
    # connection dropped): the worker's own heartbeats would renew the lease for ever.
    claim = await backend.claim("w-lost", ["default"], 1, 30)
    assert [j.id for j in claim.jobs] == [job.id]
    worker = app.worker(name="w-lost", concurrency=1, lease=0.6, handle_signals=False)
    run = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(ran.wait(), 5)
    finally:
        worker.stop()
        await asyncio.wait_for(run, 5)
    record = await job.info()
    assert record.state is JobState.COMPLETED and record.attempt == 2
    assert record.lost == 0  # given back by its holder, not rescued after a lease expiry
