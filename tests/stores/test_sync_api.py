"""The sync API on every store: from plain threads, from a web server's worker threads (a
FastAPI `def` endpoint under a real uvicorn), from inside a running loop, and concurrently."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from services import free_port

from backburner import (
    Backburner,
    InvalidArgumentsError,
    JobCancelledError,
    JobFailedError,
    JobState,
    SyncCallError,
)


def make_app(store_url: str) -> Backburner:
    app = Backburner(store_url, poll_interval=0.2)

    @app.task(name="double")
    async def double(n: int) -> int:
        return 2 * n

    @app.task(name="add", retries=0)
    def add(a: int, b: int) -> int:  # a sync task, run in a thread by the worker
        if a < 0:
            raise ValueError("negative")
        return a + b

    return app


class WorkerThread:
    """A worker on its own loop in a thread, as a separate process would be."""

    def __init__(self, app: Backburner) -> None:
        self.app = app
        self.worker = app.worker(concurrency=4, handle_signals=False)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        async def go() -> None:
            self.loop = asyncio.get_running_loop()
            await self.worker.run()

        asyncio.run(go())

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 5
        while self.loop is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_enqueue_and_wait_from_a_plain_thread(store_url: str) -> None:
    app = make_app(store_url)
    double, add = app.get_task("double"), app.get_task("add")
    with WorkerThread(app):
        job = double.enqueue_sync(21)
        assert job.initial_state is JobState.PENDING
        assert job.result_sync(timeout=10) == 42
        assert add.options(priority=5).enqueue_sync(2, b=3).result_sync(timeout=10) == 5
        many = double.enqueue_many_sync([(1,), {"n": 2}, double.call(3)])
        assert [j.result_sync(timeout=10) for j in many] == [2, 4, 6]
        failing = add.enqueue_sync(-1, 1)
        with pytest.raises(JobFailedError):
            failing.result_sync(timeout=10)
        assert failing.status_sync() is JobState.FAILED
        assert app.retry_sync(failing.id) is JobState.PENDING
        record = app.get_job_sync(job.id)
        assert record is not None and record.result == 42
        assert app.get_job_sync("0" * 26) is None
    later = double.options(delay=3600).enqueue_sync(1)
    assert later.cancel_sync() is JobState.CANCELLED
    with pytest.raises(JobCancelledError):
        later.result_sync(timeout=1)
    assert later.delete_sync() is True
    with pytest.raises(TimeoutError):
        double.options(delay=3600).enqueue_sync(2).wait_sync(timeout=0.2)
    app.close_sync()


def test_arguments_are_checked_in_the_callers_thread(store_url: str) -> None:
    app = make_app(store_url)
    with pytest.raises(InvalidArgumentsError):
        app.get_task("double").enqueue_sync("not a number")  # type: ignore[arg-type]
    assert app._portal is None, "nothing was sent to the store"


def test_many_threads_at_once(store_url: str) -> None:
    app = make_app(store_url)
    double = app.get_task("double")

    def enqueue(n: int) -> str:
        return double.enqueue_sync(n).id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(enqueue, range(80)))
    assert len(set(ids)) == 80
    with WorkerThread(app):
        assert [app.job(i).result_sync(timeout=20) for i in ids] == [2 * n for n in range(80)]
    app.close_sync()


def test_from_inside_a_running_loop(store_url: str) -> None:
    """A notebook cell or a sync helper called from async code: the caller's loop blocks
    while the portal does the work, and nothing deadlocks."""
    app = make_app(store_url)

    async def main() -> str:
        await app.get_task("double").enqueue(1)  # this loop has connections of its own
        return app.get_task("double").enqueue_sync(2).id

    job_id = asyncio.run(main())
    record = app.get_job_sync(job_id)
    assert record is not None and record.kwargs == {"n": 2}  # stored by name
    app.close_sync()


def test_a_call_from_the_portals_own_loop_is_refused(store_url: str) -> None:
    app = make_app(store_url)

    async def nested() -> object:
        return app.get_task("double").enqueue_sync(1)

    with pytest.raises(SyncCallError):
        app.run_sync(nested)
    app.close_sync()


def test_fastapi_def_endpoints_under_uvicorn(store_url: str) -> None:
    """A `def` endpoint runs in a worker thread of the server's loop: its sync calls join
    that loop (and its connections) and may wait for a job the embedded worker runs."""
    from backburner.fastapi import backburner_lifespan

    app = make_app(store_url)
    double = app.get_task("double")
    api = FastAPI(lifespan=backburner_lifespan(app))

    @api.post("/double/{n}")
    def enqueue_double(n: int) -> dict[str, object]:
        job = double.enqueue_sync(n)
        return {"id": job.id, "result": job.result_sync(timeout=10)}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        api, host="127.0.0.1", port=port, log_level="warning", ws="none",  # no WebSocket here
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client,
            ThreadPoolExecutor(6) as pool,
        ):
            answers = list(pool.map(lambda n: client.post(f"/double/{n}"), range(12)))
        assert [a.status_code for a in answers] == [200] * 12
        assert [a.json()["result"] for a in answers] == [2 * n for n in range(12)]
        assert app._portal is None, "the endpoints' calls ran on the server's loop"
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive()


CLOSE_AT_EXIT = """
import atexit, sys
from backburner import Backburner
app = Backburner(sys.argv[1])
@app.task(name="noop")
async def noop() -> None: ...
atexit.register(app.close_sync)
noop.enqueue_sync()
app.run_sync(lambda: app.list_jobs())  # SQLite: a listing uses the store's thread pool
print("enqueued")
"""


def test_close_sync_from_atexit(store_url: str) -> None:
    """`atexit.register(app.close_sync)`, the obvious clean-up of a script: atexit hooks run
    after the standard library stopped its thread pools, and the close must still work."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CLOSE_AT_EXIT, store_url],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "enqueued"
    assert "Traceback" not in done.stderr, done.stderr
