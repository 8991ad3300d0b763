"""A worker builds no per-job changes or events when nobody would be told of them (no INFO
log, no observer, no job-event listener here or in another process), and still tells every
listener that is there."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from backburner import Backburner
from backburner.backends.sqlite.datagrams import DatagramNotifier
from backburner.instrument import Change


def make_app(path: Path) -> Backburner:
    app = Backburner(f"sqlite:///{path}")

    @app.task(name="audience.noop")
    async def noop() -> int:
        return 1

    return app


async def test_the_sqlite_notifier_knows_who_listens_for_job_events(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.db")
    mine, theirs = DatagramNotifier(db), DatagramNotifier(db)
    try:
        worker_like = mine.subscribe(["wakeup", "cancel"])
        assert not mine.wants_job_events()  # its own wake-up socket is not an audience
        local = mine.subscribe(["job"])
        assert mine.wants_job_events()
        local.close()
        assert not mine.wants_job_events()
        theirs.subscribe(["job"])  # another process's event socket
        assert mine.wants_job_events()
        await theirs.close()
        assert not mine.wants_job_events()
        worker_like.close()
    finally:
        await mine.close()
        await theirs.close()


async def test_a_worker_alone_reports_nothing_and_completes_its_jobs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backburner")
    app = make_app(tmp_path / "jobs.db")
    async with app:
        jobs = await app.tasks["audience.noop"].enqueue_many([() for _ in range(5)])
        assert not app.instrumentation.wants_changes()
        worker = app.worker(burst=True, handle_signals=False)
        await worker.run()
        assert worker.processed == 5
        for job in jobs:
            assert await job.result(timeout=5) == 1


async def test_every_listener_still_hears_of_every_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backburner")
    db = tmp_path / "jobs.db"
    app = make_app(db)
    other_process = DatagramNotifier(str(db))
    try:
        async with app:
            events = other_process.subscribe(["job"])
            assert app.instrumentation.wants_changes()
            job = await app.tasks["audience.noop"].enqueue()
            worker = app.worker(burst=True, handle_signals=False)
            await worker.run()
            assert await events.wait(5)
            states = [e.state for e in events.drain() if e.job_id == job.id]
            assert states[-2:] == ["running", "completed"]
    finally:
        await other_process.close()

    observed: list[Change] = []
    app = make_app(tmp_path / "observed.db")
    app.instrumentation.observers.append(observed.extend)
    async with app:
        job = await app.tasks["audience.noop"].enqueue()
        await app.worker(burst=True, handle_signals=False).run()
    assert [c.state for c in observed if c.job_id == job.id][-2:] == ["running", "completed"]
