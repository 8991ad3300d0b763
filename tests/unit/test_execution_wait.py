"""The worker's per-job plumbing (issue 14): waiting for a job's call without asyncio.wait,
and starting job tasks (eagerly on 3.12+). What they must keep is asyncio.wait's contract:
the call is never cancelled by the wait, whatever happens to the waiter."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from backburner import Backburner
from backburner.execution import _finished_within, start_task


async def test_a_call_that_finishes_is_reported_done() -> None:
    call = asyncio.get_running_loop().create_task(asyncio.sleep(0.01, "ok"))
    assert await _finished_within(call, None) is True
    assert call.result() == "ok"


async def test_a_call_already_done_is_reported_without_waiting() -> None:
    call: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    call.set_result(1)
    assert await _finished_within(call, 0) is True


async def test_a_timeout_leaves_the_call_running() -> None:
    release = asyncio.Event()
    call = asyncio.get_running_loop().create_task(release.wait())
    assert await _finished_within(call, 0.01) is False
    assert not call.done()
    release.set()
    assert await _finished_within(call, None) is True
    assert call.result() is True


async def test_cancelling_the_waiter_does_not_cancel_the_call() -> None:
    release = asyncio.Event()
    call = asyncio.get_running_loop().create_task(release.wait())
    waiter = asyncio.get_running_loop().create_task(_finished_within(call, None))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    assert not call.done()  # still the attempt's to stop, with its grace
    release.set()
    await call


async def test_start_task_keeps_a_loops_own_task_factory() -> None:
    loop = asyncio.get_running_loop()
    made: list[Any] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def two() -> int:
        return 2

    loop.set_task_factory(factory)
    try:
        task = start_task(loop, two())
    finally:
        loop.set_task_factory(None)
    assert made == [task]
    assert await task == 2


async def test_start_task_is_eager_only_where_asyncio_can_be() -> None:
    started = False

    async def mark() -> None:
        nonlocal started
        started = True

    task = start_task(asyncio.get_running_loop(), mark())
    assert started is (sys.version_info >= (3, 12))
    await task


async def test_jobs_that_end_at_once_leave_no_running_entry() -> None:
    """On 3.12+ a job that never waits ends inside start_task: the worker must not keep it
    as running (its slot would never be freed). On 3.11 the same drain checks the ordinary
    path."""
    app = Backburner("memory://")

    @app.task(name="at_once")
    async def at_once(i: int) -> int:
        return i

    async with app:
        for i in range(30):
            await at_once.enqueue(i)
        worker = app.worker(concurrency=10, burst=True, handle_signals=False)
        await asyncio.wait_for(worker.run(), 10)
        assert worker.processed == 30
        assert worker.running_jobs == []
