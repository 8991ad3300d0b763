"""LISTEN/NOTIFY between two backend instances (two processes, as far as PostgreSQL can
tell): wake-ups, job events and cancel requests cross over; a killed LISTEN connection
comes back by itself; while it is down, subscribers are polled instead."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from backburner import Backburner, JobState
from backburner.backends.postgres import PostgresBackend
from backburner.backends.postgres.config import PostgresConfig
from backburner.backends.protocol import NewJob
from backburner.ids import new_job_id
from backburner.notify import Event

from .pg_helpers import admin, eventually, opened, schema_url


def _job(queue: str = "default") -> NewJob:
    return NewJob(
        id=new_job_id(), task="t", queue=queue, priority=0, args="[]", kwargs="{}",
        max_attempts=1,
    )


async def test_a_wakeup_crosses_to_another_instance_at_once() -> None:
    url, _ = schema_url()
    async with opened(url) as sender, opened(url) as worker_side, opened(url) as third:
        with worker_side.notifier.subscribe(["wakeup"]) as sub:
            await worker_side._notifier.connected.wait()
            started = time.monotonic()
            await sender.insert([_job("emails")])
            assert await sub.wait(1.0)
            latency = time.monotonic() - started
            assert [e.queue for e in sub.drain()] == ["emails"]
            assert latency < 0.5  # far below any poll interval
            # The sender's own listener skips its messages (delivered in-process already).
            with sender.notifier.subscribe(["wakeup"]) as own:
                await sender._notifier.connected.wait()
                await sender.insert([_job()])
                assert await sub.wait(1.0)
                # PostgreSQL delivers notifications in commit order: once a later one from
                # another instance is here, the sender's own would have been too.
                await third.insert([_job("marker")])
                assert await own.wait(5.0)
                assert [e.queue for e in own.drain()] == ["marker"]


async def test_job_events_and_cancel_requests_cross_over() -> None:
    url, _ = schema_url()
    async with opened(url) as a, opened(url) as b:
        with b.notifier.subscribe(["job"], job_id="j1") as events, \
                b.notifier.subscribe(["cancel"]) as cancels:
            await b._notifier.connected.wait()
            progress = {"current": 1, "total": 2, "message": "x" * 9000}  # over NOTIFY's limit
            a.notifier.publish([
                Event("job", "default", "j1", "t", "running", 1, {"current": 1}),
                Event("job", "default", "j2", "t", "running", 1, None),
                Event("job", "default", "j1", "t", "running", 1, progress),
                Event("cancel", "default", "j1"),
            ])
            assert await cancels.wait(2.0)
            await eventually(lambda: len(events._events) >= 2, 2.0, "both j1 events")
            got = events.drain()
            assert [e.progress for e in got] == [{"current": 1}, None]
            assert [e.job_id for e in cancels.drain()] == ["j1"]


async def test_a_result_waiter_in_another_process_is_woken_by_the_completion() -> None:
    url, _ = schema_url()
    async with opened(url) as worker_side, opened(url) as client_side:
        worker_app = Backburner(backend=worker_side, poll_interval=30)
        client_app = Backburner(backend=client_side, poll_interval=30)
        for app in (worker_app, client_app):

            @app.task(name="n.add")
            async def add(a: int, b: int) -> int:
                return a + b

        job = await client_app.get_task("n.add").enqueue(2, 3)
        # The waiter subscribes, then reads the job: once it has read it (still pending),
        # only a notification can tell it about the completion before its next poll.
        read = asyncio.Event()
        real_get = client_side.get

        async def get(job_id: str) -> Any:
            record = await real_get(job_id)
            read.set()
            return record

        client_side.get = get  # type: ignore[method-assign]
        waiter = asyncio.create_task(job.result(timeout=10))
        await asyncio.wait_for(read.wait(), 5)
        await worker_app.run_worker(burst=True)
        # With a 30 s poll interval only the NOTIFY can have been that quick.
        assert await asyncio.wait_for(waiter, 3) == 5


async def test_a_killed_listener_reconnects_and_tells_subscribers() -> None:
    url, schema = schema_url()
    async with opened(url) as sender, opened(url) as receiver, admin() as conn:
        notifier = receiver._notifier
        with receiver.notifier.subscribe(["wakeup"]) as sub:
            await notifier.connected.wait()
            first = notifier.listener_pid
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", first)
            await eventually(
                lambda: notifier.connected.is_set() and notifier.listener_pid != first,
                10, "the listener to reconnect",
            )
            # Told to re-read the store: what was sent meanwhile is gone.
            assert await sub.wait(1.0) and sub.overflowed
            sub.overflowed = False
            sub.drain()
            await sender.insert([_job()])
            assert await sub.wait(1.0) and [e.queue for e in sub.drain()] == ["default"]
            assert not sub.overflowed
            names = await conn.fetch(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1",
                f"backburner:{schema}%",
            )
            assert f"backburner:{schema}:listen" in {r[0] for r in names}


async def test_while_the_listener_is_down_workers_poll_and_pick_up_jobs() -> None:
    url, _ = schema_url(fallback_poll="0.3")
    async with opened(url) as sender, opened(url) as worker_side:
        attempts = 0

        async def refuse(config: PostgresConfig, role: str) -> Any:
            nonlocal attempts
            attempts += 1
            raise ConnectionRefusedError("the LISTEN connection cannot be made")

        worker_side._notifier._connect = refuse
        app = Backburner(backend=worker_side, poll_interval=30)
        ran = asyncio.Event()

        @app.task(name="n.mark")
        async def mark() -> None:
            ran.set()

        with worker_side.notifier.subscribe(["wakeup"]) as sub:
            # Poked every fallback_poll although no notification can arrive.
            started = time.monotonic()
            assert await sub.wait(2.0) and sub.overflowed
            assert time.monotonic() - started < 1.0
            assert not worker_side._notifier.connected.is_set() and attempts >= 1
        # The worker's first claim finds nothing: from then on it is idle (30 s poll
        # interval), so only the fallback poll can make it see the job inserted next.
        idle = asyncio.Event()
        real_claim = worker_side.claim

        async def claim(*args: Any, **kwargs: Any) -> Any:
            claimed = await real_claim(*args, **kwargs)
            if not claimed.jobs:
                idle.set()
            return claimed

        worker_side.claim = claim  # type: ignore[method-assign]
        worker = asyncio.create_task(app.run_worker(concurrency=1))
        try:
            await asyncio.wait_for(idle.wait(), 5)
            job = NewJob(
                id=new_job_id(), task="n.mark", queue="default", priority=0, args="[]",
                kwargs="{}", max_attempts=1,
            )
            enqueued = time.monotonic()
            await sender.insert([job])
            await asyncio.wait_for(ran.wait(), 3)
            assert time.monotonic() - enqueued < 1.5  # fallback_poll + a claim, not 30 s
            await eventually(
                lambda: _state(worker_side, job.id, JobState.COMPLETED), 5, "the completion"
            )
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


async def _state(backend: PostgresBackend, job_id: str, state: JobState) -> bool:
    record = await backend.get(job_id)
    return record is not None and record.state is state
