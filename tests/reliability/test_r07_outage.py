"""R7 at CI size, server backends: the store becomes unreachable for a while.

Workers reach Redis/PostgreSQL through a TCP proxy that the test cuts for OUTAGE seconds
(open connections dropped, new ones refused) while jobs run and more are enqueued directly.
Workers must neither exit nor lose anything: they back off, reconnect within 10 s of the
store coming back, and every job completes."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from rel_harness import DB_ENV, Scenario, check
from services import SERVER_BACKENDS
from tcp_proxy import TCPProxy

from backburner import Backburner

pytestmark = pytest.mark.reliability

OUTAGE = 10.0
JOBS = 400


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", SERVER_BACKENDS or ["redis"], indirect=True)
def test_workers_ride_out_an_outage(scenario: Scenario) -> None:
    target = urlsplit(scenario.url)
    with TCPProxy(target.hostname or "127.0.0.1", target.port or 0) as proxy:
        scenario.pool.env[DB_ENV] = _through(scenario.url, proxy.port)

        async def enqueue(app: Backburner, count: int) -> list[str]:
            jobs = await app.get_task("rel.work").enqueue_many([(50,)] * count)
            return [j.id for j in jobs]

        first = scenario.with_app(lambda app: enqueue(app, JOBS))
        # Leases outlive the outage: held jobs are acknowledged afterwards, not re-run.
        workers = scenario.pool.start(2, concurrency=8, lease=30.0)
        scenario.wait_for(lambda: scenario.states().get("completed", 0) >= 20, 30,
                          "the workers to get going")
        proxy.cut()
        cut_at = time.monotonic()
        # Enqueue straight to the store meanwhile: acknowledged jobs must not be lost.
        during = scenario.with_app(lambda app: enqueue(app, JOBS // 4))
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))
        assert all(w.alive() for w in workers), scenario.pool.logs()[-4000:]
        before = scenario.states().get("completed", 0)
        proxy.restore()
        restored_at = time.monotonic()
        resumed_at = scenario.wait_for(
            lambda: scenario.states().get("completed", 0) > before, 30, "work to resume"
        )
        scenario.wait_all_terminal(90)
        assert all(w.alive() for w in workers), "a worker exited during the outage"
        ids = first + during
        verdict = check(scenario.history(), scenario.records(ids), died={})
        assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
        assert verdict.overlaps == [] and verdict.stale_writes == [], verdict.summary()
        assert verdict.double_claims == [], verdict.summary()
        assert resumed_at - restored_at < 10.0
        print(f"FIGURES R7 {scenario.kind}: outage={OUTAGE:.0f}s jobs={len(ids)} "
              f"resumed_after={resumed_at - restored_at:.2f}s {verdict.summary()}")
