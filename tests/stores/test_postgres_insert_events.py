"""The `job` events of an enqueue on PostgreSQL travel in the insert statement itself
(queries.sql, insert_jobs): another backend instance on the schema hears each with its job's
id and state, whatever the insert path (plain, unique key, flow, the application's
transaction); no background NOTIFY statement follows the insert; a batch too big for one
NOTIFY payload is split over several and every job's event arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from services import POSTGRES_URL

from backburner import Backburner
from backburner.backends.postgres import PostgresBackend
from backburner.backends.postgres.notifier import _EVENT_FRAME, MAX_PAYLOAD
from backburner.backends.protocol import NewJob
from backburner.ids import new_job_id
from backburner.notify import Event

from .pg_helpers import admin, eventually, opened, schema_url

Message = tuple[int, dict[str, Any]]
"""A notification as received: its payload's size in bytes, and the payload parsed."""


@asynccontextmanager
async def two_processes() -> AsyncIterator[tuple[Backburner, PostgresBackend]]:
    """An app that enqueues, and a second backend on the same schema standing for another
    process (a result waiter, a live stream)."""
    url, _ = schema_url()
    async with opened(url) as mine, opened(url) as theirs:
        app = Backburner(backend=mine)

        @app.task(name="ev.send")
        async def send(n: int) -> int:
            return n

        await app.open()
        yield app, theirs


@asynccontextmanager
async def raw_listener(channel: str) -> AsyncIterator[Callable[[], Any]]:
    """A bare LISTEN session on `channel`; yields a coroutine function answering every
    message received so far (sizes and payloads)."""
    conn = await asyncpg.connect(POSTGRES_URL)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener(channel, lambda *args: payloads.put_nowait(args[3]))

    async def so_far() -> list[Message]:
        # PostgreSQL delivers notifications in commit order: a marker committed now comes
        # after every message committed before it, so no waiting for nothing to arrive.
        await conn.execute("SELECT pg_notify($1, $2)", channel, '{"o":"marker","e":[]}')
        got: list[Message] = []
        while True:
            raw = await asyncio.wait_for(payloads.get(), 5.0)
            message = orjson.loads(raw)
            if message["o"] == "marker":
                return got
            got.append((len(raw.encode()), message))

    try:
        yield so_far
    finally:
        await conn.close()


async def heard(theirs: PostgresBackend, sub: Any, ids: set[str]) -> dict[str, Event]:
    """The job events `sub` (on the other instance) received until it has one per id."""
    events: dict[str, Event] = {}

    def arrived() -> bool:
        events.update((e.job_id, e) for e in sub.drain() if e.job_id is not None)
        return ids <= events.keys()

    await eventually(arrived, 5.0, "the job events on the other instance")
    return events


def new_job(queue: str) -> NewJob:
    return NewJob(
        id=new_job_id(), task="t", queue=queue, priority=0, args="[]", kwargs="{}",
        max_attempts=1,
    )


def assert_no_background_notify(backend: PostgresBackend) -> None:
    """The notifier never started its sender task (the only thing that sends job events
    in a statement of their own), and has nothing queued for one."""
    notifier = backend._notifier
    assert notifier._sender is None, "a background NOTIFY statement was sent"
    assert not notifier._outbox


async def test_every_insert_path_is_heard_by_another_instance_with_no_second_statement(
) -> None:
    async with two_processes() as (app, theirs):
        mine = app.backend
        assert isinstance(mine, PostgresBackend)
        send = app.get_task("ev.send")
        async with raw_listener(mine.config.channel("job")) as so_far:
            with theirs.notifier.subscribe(["job"]) as sub:
                await theirs._notifier.connected.wait()
                plain = await send.enqueue(1)
                later = await send.options(delay=3600).enqueue(2)
                unique = await send.options(unique_key="k").enqueue(3)
                again = await send.options(unique_key="k").enqueue(4)
                chain = await app.chain(send.call(5), send.call(6))
                conn = await asyncpg.connect(POSTGRES_URL)
                try:
                    async with conn.transaction():
                        inside = await send.options(connection=conn).enqueue(7)
                finally:
                    await conn.close()
                assert again.duplicate and again.id == unique.id
                expected = {
                    plain.id: "pending", later.id: "scheduled", unique.id: "pending",
                    chain.jobs[0].id: "pending", chain.jobs[1].id: "scheduled",
                    inside.id: "pending",
                }
                events = await heard(theirs, sub, set(expected))
                assert {i: events[i].state for i in expected} == expected
                assert all(
                    e.kind == "job" and e.task == "ev.send" and e.queue == "default"
                    and e.attempt == 0 and e.progress is None for e in events.values()
                )
            assert_no_background_notify(mine)
            # Each event went out once, in the statement, in the enqueuing process's name.
            messages = await so_far()
            sent = [item[2] for _, m in messages for item in m["e"]]
            assert sorted(sent) == sorted(expected)
            assert {m["o"] for _, m in messages} == {mine._notifier.origin}


async def test_the_own_process_gets_its_events_once() -> None:
    """Delivered in-process by the enqueue; the statement's copy, in this process's name, is
    skipped by its own listener."""
    async with two_processes() as (app, theirs):
        mine = app.backend
        assert isinstance(mine, PostgresBackend)
        with mine.notifier.subscribe(["job"]) as sub:
            await mine._notifier.connected.wait()
            job = await app.get_task("ev.send").enqueue(1)
            # Notifications arrive in commit order: once the other instance's later insert
            # is heard here, the statement's own message has been through the listener.
            other = new_job(queue="other")
            await theirs.insert([other])
            theirs.notifier.publish([Event("job", "other", other.id, "t", "pending", 0, None)])
            events: list[Event] = []

            def marker_heard() -> bool:
                events.extend(sub.drain())
                return any(e.job_id == other.id for e in events)

            await eventually(marker_heard, 5.0, "the other instance's event")
            assert [e.state for e in events if e.job_id == job.id] == ["pending"]
        assert_no_background_notify(mine)


async def test_a_batch_bigger_than_a_payload_is_split_and_every_event_arrives() -> None:
    async with two_processes() as (app, theirs):
        mine = app.backend
        assert isinstance(mine, PostgresBackend)
        name = "ev." + "long_task_name_" * 8  # ~200-byte events: ~40 to a payload

        @app.task(name=name)
        async def long_named(n: int) -> int:
            return n

        async with raw_listener(mine.config.channel("job")) as so_far:
            with theirs.notifier.subscribe(["job"]) as sub:
                await theirs._notifier.connected.wait()
                jobs = await long_named.enqueue_many([(n,) for n in range(500)])
                ids = {j.id for j in jobs}
                events = await heard(theirs, sub, ids)
                assert {events[i].state for i in ids} == {"pending"}
            assert_no_background_notify(mine)
            messages = await so_far()
        assert len(messages) > 1
        assert all(size < MAX_PAYLOAD for size, _ in messages)
        sent = [item[2] for _, m in messages for item in m["e"]]
        assert sorted(sent) == sorted(ids)  # each once


async def test_an_event_too_big_for_a_payload_leaves_the_insert_alone() -> None:
    """A job whose event could not fit in any payload (a task name of 8000 characters) is
    inserted without it, never failing for a notification; the event goes the way of
    every other event, through publish()."""
    async with two_processes() as (app, _):
        mine = app.backend
        assert isinstance(mine, PostgresBackend)

        @app.task(name="ev." + "x" * MAX_PAYLOAD)
        async def huge(n: int) -> int:
            return n

        job = await huge.enqueue(1)
        record = await mine.get(job.id)
        assert record is not None and record.task == huge.name
        assert mine._notifier._sender is not None  # handed to the background publish


async def test_the_size_of_an_event_is_never_underestimated() -> None:
    """statement_events sizes payloads from orjson's encoding: PostgreSQL's own text of the
    event (what the statement sends) is never longer, whatever the characters."""
    names = ["plain", 'quo"tes', "back\\slash", "tab\tnew\nline\x01\x1f\x7f", "é世界🎉",
             "a" * 300]
    async with admin() as conn:
        for name in names:
            ours = len(orjson.dumps((name, name, name))) + _EVENT_FRAME
            theirs = await conn.fetchval(
                "SELECT octet_length(json_build_array('job', $1::text, $1::text, $1::text, "
                "'scheduled', 0)::text) + 2", name,
            )
            assert theirs <= ours, name
