"""What the contract suite cannot see of the MySQL/MariaDB store: its URL, its schema and
migrations, exact text comparison, rows written by something else (R20), concurrent claimers,
and wake-ups between processes of one machine."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from services import MYSQL_URL, require_service

from backburner import Backburner
from backburner.backends import open_backend
from backburner.backends.mysql import MySQLBackend
from backburner.backends.mysql.config import parse_url
from backburner.backends.mysql.connections import single
from backburner.backends.mysql.schema import MIGRATIONS
from backburner.backends.protocol import Completion, JobFilter, NewJob
from backburner.errors import ConfigurationError, StoreNotFoundError
from backburner.job import FailureReason, JobState


def _url(**options: str) -> str:
    require_service(MYSQL_URL)
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{MYSQL_URL.rstrip('/')}/bbt_{uuid.uuid4().hex[:12]}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[MySQLBackend]:
    backend = MySQLBackend(url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.destroy()
        await backend.close()


def job(job_id: str, queue: str = "q", **fields: object) -> NewJob:
    return NewJob(job_id, "t", queue, 0, "[]", "{}", 3, **fields)  # type: ignore[arg-type]


def test_urls() -> None:
    config = parse_url("mariadb://u%40x:p%2Fw@db.example:3307/jobs?pool_size=3&command_timeout=2")
    assert (config.user, config.password, config.host, config.port) == ("u@x", "p/w",
                                                                         "db.example", 3307)
    assert (config.database, config.pool_size, config.command_timeout) == ("jobs", 3, 2.0)
    assert parse_url("mysql://root@127.0.0.1").database == "backburner"
    for bad in ("mysql://h/db?nope=1", "mysql://h/db?pool_size=0", "mysql://h/" + "x" * 65,
                "mysql://h/db?command_timeout=-1"):
        with pytest.raises(ConfigurationError):
            parse_url(bad)
    assert isinstance(open_backend("mariadb://root@127.0.0.1/x"), MySQLBackend)


async def test_open_without_create_migrate_and_destroy() -> None:
    url = _url()
    with pytest.raises(StoreNotFoundError, match="backburner migrate"):
        await MySQLBackend(url).open(create=False)
    backend = MySQLBackend(url)
    assert await backend.migrate() == [v for v, _, _ in MIGRATIONS]
    assert await backend.migrate() == []
    await backend.open(create=False)
    name = backend.config.database
    try:
        found = await single(backend._pool, (
            "SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (name,),
        ))
        assert found[0].rows[0]["n"] == 1
        await backend.destroy()
        found = await single(backend._pool, (
            "SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (name,),
        ))
        assert found[0].rows[0]["n"] == 0
    finally:
        await backend.close()


async def test_names_keys_and_text_compare_exactly() -> None:
    async with opened(_url()) as backend:
        await backend.insert([job("a1", "a"), job("A1", "A"), job("sp1", "a ")])
        counts = await backend.counts()
        assert {q for q, _ in counts} == {"a", "A", "a "}
        first = await backend.insert([job("k1", unique_key="k")])
        other = await backend.insert([job("k2", unique_key="k ")])
        dup = await backend.insert([job("k3", unique_key="k")])
        assert (first[0].id, other[0].id, dup[0].id) == ("k1", "k2", "k1")
        text = "😀 \x00 end"
        await backend.insert([NewJob("emoji", "t", "q", 0, f'["{text}"]'.replace("\x00", "\\u0000"),
                                     "{}", 1)])
        record = await backend.get("emoji")
        assert record is not None and record.args == [text]
        page = await backend.list_jobs(JobFilter(search="😀"))
        assert [j.id for j in page.jobs] == ["emoji"]


async def test_rows_written_by_something_else_never_fail_a_read_or_a_worker() -> None:
    async with opened(_url()) as backend:
        await backend.insert([job("odd"), job("ok")])
        table = f"{backend.config.quoted_database}.backburner_jobs"
        # Written as another program would.
        await single(backend._pool, (
            f"UPDATE {table} SET timeout = -1, errors = 'not json', progress = '[1', "
            "meta = 'x', depends_on = '{' WHERE id = 'odd'", (),
        ))
        await single(backend._pool, (
            f"INSERT INTO {table} (id, task, queue, state, args, kwargs, max_attempts, errors, "
            "created_at, updated_at, run_at) VALUES ('bogus', 't', 'q', 'lost in space', "
            "'[]', '{}', 1, '[]', 0, 0, 0)", (),
        ))
        odd = await backend.get("odd")
        assert odd is not None and odd.errors[-1].type == "InvalidRow"
        bogus = await backend.get("bogus")
        assert bogus is not None and bogus.state is JobState.FAILED  # shown, marked
        assert len((await backend.list_jobs(JobFilter(search="x"), limit=10)).jobs) == 0
        claim = await backend.claim("w", ["q"], 5, 30)
        assert [j.id for j in claim.jobs] == ["ok"]  # the odd one is failed, not handed out
        odd = await backend.get("odd")
        assert odd is not None and odd.state is JobState.FAILED
        assert odd.reason is FailureReason.INVALID_PAYLOAD
        assert await backend.cancel("bogus") is None and await backend.delete("bogus")


async def test_concurrent_claimers_never_share_a_job() -> None:
    url = _url()
    async with opened(url) as first:
        second = MySQLBackend(url)
        await second.open()
        try:
            await first.insert([job(f"j{i}") for i in range(200)])
            claims = await asyncio.gather(*(
                backend.claim(f"w{n}", ["q"], 7, 30)
                for n in range(12) for backend in (first, second)
            ))
            claimed = [j.id for c in claims for j in c.jobs]
            assert len(claimed) == len(set(claimed)) == 168
            done = await first.complete([Completion(j.id, j.attempt, "1")
                                         for c in claims for j in c.jobs])
            assert all(done)
        finally:
            await second.close()


async def test_a_wake_up_reaches_another_process_on_this_machine() -> None:
    """The local datagram notifier: an enqueue published by one backend wakes the
    subscribers of another instance on the same server and database (a second process)."""
    url = _url()
    async with opened(url) as producer:
        consumer = MySQLBackend(url)
        await consumer.open()
        elsewhere = MySQLBackend(_url())
        await elsewhere.open()
        try:
            woken = consumer.notifier.subscribe(["wakeup"])
            stranger = elsewhere.notifier.subscribe(["wakeup"])
            app = Backburner(backend=producer)

            @app.task(name="t.ping")
            async def ping() -> None:
                return None

            await app.open()
            await ping.enqueue()
            assert await woken.wait(2.0), "no wake-up arrived"
            assert [e.queue for e in woken.drain()] == ["default"]
            assert not stranger.drain(), "another database's workers were woken"
        finally:
            await elsewhere.destroy()
            await elsewhere.close()
            await consumer.close()
