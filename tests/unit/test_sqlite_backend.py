"""What only the SQLite backend must guarantee: schema, WAL, fork safety, cross-process
wake-ups."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.sqlite import SQLiteBackend
from backburner.backends.sqlite.schema import MIGRATIONS, statements

SCHEMA = Path(__file__).parents[2] / "src/backburner/backends/sqlite/schema.sql"


def _schema_of(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
        "AND name != 'backburner_migrations'"
    )
    return {(t, n, " ".join((s or "").split())) for t, n, s in rows}


async def test_migrations_produce_exactly_the_documented_schema(tmp_path: Path) -> None:
    backend = SQLiteBackend(f"sqlite:///{tmp_path}/m.db")
    await backend.open()
    await backend.close()
    migrated = sqlite3.connect(tmp_path / "m.db")
    reference = sqlite3.connect(":memory:")
    for statement in statements(SCHEMA.read_text()):
        reference.execute(statement)
    assert _schema_of(migrated) == _schema_of(reference)
    versions = [r[0] for r in migrated.execute("SELECT version FROM backburner_migrations")]
    assert versions == [v for v, _, _ in MIGRATIONS]


async def test_concurrent_opens_apply_migrations_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    backends = [SQLiteBackend(url) for _ in range(5)]
    await asyncio.gather(*(b.open() for b in backends))
    for b in backends:
        await b.close()
    conn = sqlite3.connect(tmp_path / "race.db")
    applied = conn.execute("SELECT count(*) FROM backburner_migrations").fetchone()[0]
    assert applied == len(MIGRATIONS)


async def test_wal_mode_is_enforced(tmp_path: Path) -> None:
    backend = SQLiteBackend(f"sqlite:///{tmp_path}/w.db")
    await backend.open()
    await backend.close()
    conn = sqlite3.connect(tmp_path / "w.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    app = Backburner(f"sqlite:///{tmp_path}/nope/x.db")
    with pytest.raises(ConfigurationError, match="does not exist"):
        await app.open()


def _child_enqueues(app: Backburner, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def go() -> str:
        task = app.get_task("forked")
        job = await task.enqueue(2)
        return job.id

    out.put(asyncio.run(go()))


async def test_connections_are_not_carried_across_fork(tmp_path: Path) -> None:
    app = Backburner(f"sqlite:///{tmp_path}/fork.db")

    @app.task(name="forked")
    async def forked(n: int) -> int:
        return n

    first = await forked.enqueue(1)  # the parent now holds a connection and a thread
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_enqueues, args=(app, out))
    child.start()
    child_job = await asyncio.to_thread(out.get, True, 30)
    await asyncio.to_thread(child.join, 30)
    assert child.exitcode == 0
    await app.run_worker(burst=True)
    assert await first.result(timeout=5) == 1
    assert await app.job(child_job).result(timeout=5) == 2
    assert await app.backend.integrity_check() == "ok"  # type: ignore[attr-defined]
    await app.close()


WORKER_APP = textwrap.dedent(
    """
    import os
    from backburner import Backburner
    app = Backburner(os.environ["WAKE_DB"], poll_interval=30)

    @app.task(name="echo")
    async def echo(n: int) -> int:
        return n

    @app.task(name="sleepy")
    async def sleepy() -> None:
        import asyncio
        await asyncio.sleep(600)
    """
)


@pytest.mark.timeout(60)
async def test_a_worker_in_another_process_is_woken_not_polled(tmp_path: Path) -> None:
    """The worker polls every 30 s; each job must still finish far sooner, so it was woken
    by the enqueuer's datagram, and the enqueuer by the worker's."""
    url = f"sqlite:///{tmp_path}/wake.db"
    (tmp_path / "wake_app.py").write_text(WORKER_APP)
    app = Backburner(url, poll_interval=30)

    @app.task(name="echo")
    async def echo(n: int) -> int:
        return n

    @app.task(name="sleepy")
    async def sleepy() -> None: ...

    await app.open()
    env = {**os.environ, "WAKE_DB": url, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
        [sys.executable, "-m", "backburner", "--log-level", "WARNING", "worker",
         "wake_app:app", "--poll-interval", "30"],
        cwd=tmp_path, env=env,
    )
    try:
        warm = await echo.enqueue(0)
        assert await warm.result(timeout=20) == 0  # the worker is up
        for i in range(1, 6):
            job = await echo.enqueue(i)
            assert await job.result(timeout=10) == i
        # A cancel request reaches the other process at once (heartbeats are 10 s apart).
        long = await sleepy.enqueue()
        while (await long.status()) is not JobState.RUNNING:
            await asyncio.sleep(0.02)
        assert await long.cancel() is JobState.RUNNING
        assert (await long.wait(timeout=5)).state is JobState.CANCELLED
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        await app.close()
    async with Backburner(url) as check:
        page = await check.list_jobs(states=[JobState.COMPLETED])
        assert len(page.jobs) == 6
        assert len((await check.list_jobs(states=[JobState.CANCELLED])).jobs) == 1
