"""A PostgreSQL outage is logged once when it starts and once when it ends: no traceback
per reconnect attempt of the pool (asyncpg logs one at each try to restore its connection
floor), no line per failed call from the backend or per retry of the worker. The server is
cut off by a TCP proxy (tcp_proxy.py), so the shared server other tests use stays up."""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import urlsplit

import pytest
from services import POSTGRES_URL, SERVER_BACKENDS, require_service
from tcp_proxy import TCPProxy

from backburner import Backburner
from backburner.errors import BackendUnavailableError

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif("postgres" not in SERVER_BACKENDS, reason="no PostgreSQL backend"),
]


def test_an_outage_is_two_lines_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    require_service(POSTGRES_URL)
    target = urlsplit(POSTGRES_URL)
    caplog.set_level(logging.INFO)

    async def run(proxy: TCPProxy) -> int:
        url = (f"postgresql://{target.username}@127.0.0.1:{proxy.port}{target.path}"
               f"?schema=bbt_{uuid.uuid4().hex[:12]}&pool_min_size=2")
        app = Backburner(url, poll_interval=0.2)

        @app.task(name="outage.one")
        async def one() -> int:
            return 1

        await app.open()
        worker = asyncio.create_task(app.run_worker(concurrency=2, handle_signals=False))
        try:
            await asyncio.sleep(0.5)
            proxy.cut()
            # Long enough for the pool to retry its floor connections (after 1 s, then 2 s)
            # and the worker to fail several claims; what is checked is what got logged.
            await asyncio.sleep(4)
            proxy.restore()
            result = None
            while result is None:  # calls fail as unavailable until the pool reconnects
                try:
                    job = await one.enqueue()
                    result = await job.result(timeout=30)
                except BackendUnavailableError:  # while the pool reconnects
                    await asyncio.sleep(0.2)
            return int(result)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await app.backend.destroy()  # type: ignore[attr-defined]
            await app.close()

    with TCPProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        assert asyncio.run(run(proxy)) == 1

    with_traceback = [r for r in caplog.records if r.exc_info]
    assert with_traceback == [], [r.getMessage() for r in with_traceback]
    assert not [r for r in caplog.records if r.name == "asyncpg.pool"]
    outage = [r.getMessage() for r in caplog.records if r.name == "backburner.backends"]
    assert len(outage) == 2, outage
    assert "is unreachable" in outage[0] and "is reachable again" in outage[1], outage
    # The worker's side tasks (claims, heartbeats, housekeeping) retried for 4 s: one line
    # when they started failing, one when a call went through again, none per retry.
    worker = [r.getMessage() for r in caplog.records
              if r.name == "backburner.worker" and r.levelno >= logging.WARNING]
    assert len(worker) == 2, worker
    assert "is unreachable" in worker[0] and "reachable again" in worker[1], worker
