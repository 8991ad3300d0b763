"""R9 at CI size: PostgreSQL connections terminated repeatedly, and the server "restarted".

Two worker processes reach PostgreSQL through a TCP proxy (the shared server other tests use
is never restarted). Three phases, one run:

1. While jobs flow, every session of the workers (pool and LISTEN) is killed with
   pg_terminate_backend, KILLS times: nothing is lost, no job runs twice at once.
2. Only the LISTEN sessions are killed, each time right before a job is enqueued (its NOTIFY
   goes nowhere): each such job is still picked up within the poll interval.
3. The proxy is cut for OUTAGE seconds (a server down or restarting: connections dropped,
   new ones refused) while jobs are enqueued straight to the server: after it is back the
   workers reconnect, LISTEN included, within 10 s, and those jobs, whose NOTIFY no worker
   heard, are picked up within the poll interval.
"""

from __future__ import annotations

import asyncio
import random
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest
from rel_harness import DB_ENV, Scenario, check
from services import POSTGRES_URL, SERVER_BACKENDS
from tcp_proxy import TCPProxy

from backburner import Backburner

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif("postgres" not in SERVER_BACKENDS, reason="no PostgreSQL backend"),
]

JOBS = 1500
WORKERS = 2
CONCURRENCY = 8
LEASE = 6.0
POLL = 2.0
"""The workers' poll interval (the default): the bound on picking up a job nobody was told
about. Notifications make it far shorter when LISTEN works."""
KILLS = 8
LISTEN_KILLS = 4
OUTAGE = 3.0
OUTAGE_JOBS = 20
SLACK = 0.5
"""A claim's round trip and process scheduling on a loaded 2-core machine."""


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host))


def _admin(sql: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            POSTGRES_URL, server_settings={"application_name": "bbt-r9-killer"}
        )
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _kill(*names: str) -> int:
    return len(_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = ANY($1::text[])", list(names),
    ))


def _sessions(name: str) -> int:
    rows = _admin("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)
    return int(rows[0][0])


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", ["postgres"], indirect=True)
def test_terminated_connections_and_a_restart_lose_nothing(
    scenario: Scenario, rng: random.Random
) -> None:
    schema = dict(p.split("=", 1) for p in urlsplit(scenario.url).query.split("&"))["schema"]
    pool_name, listen_name = f"backburner:{schema}", f"backburner:{schema}:listen"
    work = "rel.work"

    async def enqueue(app: Backburner, count: int, ms: int) -> list[str]:
        jobs = await app.get_task(work).enqueue_many([(ms,)] * count)
        return [j.id for j in jobs]

    def enqueue_now(count: int = 1, ms: int = 20) -> tuple[list[str], float]:
        """The ids, and the wall time just before the enqueue (an upper bound on pickup)."""
        at = time.time()
        return scenario.with_app(lambda app: enqueue(app, count, ms)), at

    def pickup(ids: list[str], since: float, timeout: float) -> float:
        """Seconds from `since` (wall clock) to the first start of any of `ids`."""
        def started() -> bool:
            history = scenario.history()
            return all(history.of(i) for i in ids)

        scenario.wait_for(started, timeout, f"{len(ids)} job(s) to start")
        history = scenario.history()
        return min(history.of(i)[0].start_wall for i in ids) - since

    target = urlsplit(scenario.url)
    with TCPProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        scenario.pool.env[DB_ENV] = _through(scenario.url, proxy.port)
        ids = scenario.with_app(lambda app: enqueue(app, JOBS, 20))
        workers = scenario.pool.start(WORKERS, concurrency=CONCURRENCY, lease=LEASE,
                                      poll_interval=POLL)
        scenario.wait_for(lambda: _sessions(listen_name) == WORKERS, 30, "the workers' LISTEN")
        scenario.wait_for(lambda: scenario.states().get("completed", 0) >= 50, 30,
                          "the workers to get going")

        # 1. Every session of the workers killed, again and again, while jobs flow.
        killed = 0
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 0.8))
            killed += _kill(pool_name, listen_name)
        scenario.wait_all_terminal(90)

        # 2. LISTEN killed right before each enqueue: the NOTIFY is lost (or caught by the
        # reconnect), the job is picked up within the poll interval all the same.
        listen_pickups = []
        for _ in range(LISTEN_KILLS):
            scenario.wait_for(lambda: _sessions(listen_name) == WORKERS, 10, "LISTEN back")
            _kill(listen_name)
            batch, at = enqueue_now()
            ids += batch
            listen_pickups.append(pickup(batch, at, POLL + 10))

        # 3. The server goes away (for the workers) and comes back.
        proxy.cut()
        cut_at = time.monotonic()
        during, _ = enqueue_now(OUTAGE_JOBS, ms=50)
        ids += during
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))
        assert all(w.alive() for w in workers), scenario.pool.logs()[-4000:]
        proxy.restore()
        restored_wall, restored = time.time(), time.monotonic()
        outage_pickup = pickup(during, restored_wall, 30)
        reconnected = scenario.wait_for(
            lambda: _sessions(listen_name) == WORKERS, 10, "LISTEN to reconnect"
        ) - restored
        # Once LISTEN is back, a wake-up reaches the workers again.
        after, at = enqueue_now()
        ids += after
        notified_pickup = pickup(after, at, POLL + 10)
        scenario.wait_all_terminal(60)

    assert all(w.alive() for w in workers), "a worker exited"
    verdict = check(scenario.history(), scenario.records(ids), died={})
    summary = f"{verdict.summary()} (seed {scenario.seed})"
    assert verdict.lost == [] and verdict.never_ran == [], summary
    assert verdict.overlaps == [] and verdict.double_claims == [], summary
    assert verdict.stale_writes == [] and verdict.unexplained_reruns == [], summary
    assert killed >= KILLS, f"only {killed} sessions were killed"
    assert max(listen_pickups) <= POLL + SLACK, listen_pickups
    assert outage_pickup <= POLL + SLACK, outage_pickup
    assert reconnected < 10.0, reconnected
    assert notified_pickup <= POLL + SLACK, notified_pickup
    print(f"FIGURES R9: jobs={len(ids)} sessions_killed={killed} in {KILLS} rounds "
          f"listen_kill_pickups={[round(p, 2) for p in listen_pickups]}s "
          f"outage={OUTAGE:.0f}s pickup_after_restore={outage_pickup:.2f}s "
          f"listen_reconnected_after={reconnected:.2f}s "
          f"pickup_once_listening={notified_pickup:.2f}s poll={POLL}s {summary}")
