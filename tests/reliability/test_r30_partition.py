"""R30: a worker cut off from the store by the network, on the network stores.

Worker A reaches Redis or PostgreSQL through a fault-injecting proxy (tcp_proxy.py) with
timeouts shorter than its lease; worker B connects directly. A takes every job, then the
network between A and the store fails for twice the lease, one of three ways:
- `drop`: every connection reset (RST), new ones too;
- `blackhole`: nothing answers and nothing says so (accepted, read, discarded): only A's
  timeouts can tell; its connections of before stay silent for ever, after the heal too;
- `replies`: one direction only, the store hears A but A never hears the store (requests
  are carried out, their replies vanish).
Then the network heals. What must hold: A's jobs are rescued by B after their lease (or, when
the store still heard A's heartbeats, finished by A); A's late outcomes and progress are
refused (attempt fencing: stale_writes = 0); no job ends twice; A neither exits nor hangs and
takes work again by itself once the network is back."""

from __future__ import annotations

import asyncio
import signal
import time
from urllib.parse import urlsplit

import pytest
import r30_app
from rel_harness import DB_ENV, Scenario, check
from services import SERVER_BACKENDS, ci_share
from tcp_proxy import TCPProxy
from test_r07_outage import _through

from backburner import FailureReason, JobState

pytestmark = pytest.mark.reliability

LEASE = 2.0
TIMEOUT = 0.5
"""The store timeouts of the worker behind the proxy: well under its heartbeat (LEASE / 3),
as they must be for a black-hole to be noticed before the lease runs out."""
SHORT, LONG = 4, 2
"""Jobs that end while A is cut off, and jobs still running on A when the network heals."""
KINDS = [kind for kind in SERVER_BACKENDS if kind in ("redis", "postgres")] or ["redis"]


def with_timeouts(url: str, kind: str, seconds: float = TIMEOUT) -> str:
    options = (f"socket_timeout={seconds}&socket_connect_timeout={seconds}" if kind == "redis"
               else f"command_timeout={seconds}&connect_timeout={seconds}")
    return f"{url}{'&' if urlsplit(url).query else '?'}{options}"


def start_fault(proxy: TCPProxy, fault: str) -> None:
    if fault == "drop":
        proxy.drop()
    elif fault == "blackhole":
        proxy.blackhole()
    else:
        proxy.blackhole("down")


@pytest.mark.timeout(150)
# CI runs each fault on one store or both (black-hole, the one only timeouts detect, on
# both); BACKBURNER_TEST_FULL=1 runs every fault on every store.
@pytest.mark.parametrize(("scenario", "fault"), ci_share(
    [(k, f) for k in KINDS for f in ("drop", "blackhole", "replies")],
    {("redis", "drop"), ("redis", "blackhole"), ("postgres", "blackhole"),
     ("postgres", "replies")},
), indirect=["scenario"])
def test_a_worker_cut_off_by_the_network_is_fenced_and_comes_back(
    scenario: Scenario, fault: str
) -> None:
    target = urlsplit(scenario.url)
    with TCPProxy(target.hostname or "127.0.0.1", target.port or 0) as proxy:
        direct_env = scenario.pool.env[DB_ENV]
        # B first, proven up by a probe job, then paused while A takes every job.
        (rescuer,) = scenario.pool.start(1, concurrency=SHORT + LONG, lease=LEASE,
                                         app="r30_app:app")
        probe = scenario.with_app(lambda app: app.get_task("rel.work").enqueue(1))
        scenario.wait_for(lambda: all_completed(scenario, [probe.id]), 30,
                          "the direct worker to start")
        scenario.pool.pause(rescuer)
        scenario.pool.env[DB_ENV] = with_timeouts(_through(scenario.url, proxy.port),
                                                  scenario.kind)
        (cut_off,) = scenario.pool.start(1, concurrency=SHORT + LONG, lease=LEASE,
                                         app="r30_app:app")
        scenario.pool.env[DB_ENV] = direct_env

        async def enqueue() -> tuple[list[str], list[str]]:
            async with r30_app.build_app(scenario.url) as app:
                steps = app.get_task("r30.steps")
                short = await steps.enqueue_many([(10, 0.15)] * SHORT)
                long = await steps.enqueue_many([(50, 0.15)] * LONG)
            return [j.id for j in short], [j.id for j in long]

        short_ids, long_ids = asyncio.run(enqueue())
        ids = short_ids + long_ids
        scenario.wait_for(lambda: all(scenario.history().of(j) for j in ids), 30,
                          "the cut-off worker to start every job")
        scenario.pool.resume(rescuer)
        start_fault(proxy, fault)
        cut_at = time.monotonic()
        time.sleep(2 * LEASE)
        assert cut_off.alive(), scenario.pool.logs()[-4000:]
        proxy.heal()
        healed_at = time.monotonic()
        scenario.wait_all_terminal(60)

        # A resumes by itself: with B stopped, only A can run these.
        rescuer.popen.send_signal(signal.SIGTERM)
        assert rescuer.popen.wait(20) == 0, scenario.pool.logs()[-4000:]
        after_at = time.monotonic()
        after = scenario.with_app(
            lambda app: app.get_task("rel.work").enqueue_many([(10,)] * 10)
        )
        resumed_at = scenario.wait_for(
            lambda: all_completed(scenario, [j.id for j in after]), 30,
            "the cut-off worker to take work again",
        )
        history = scenario.history()
        records = scenario.records(ids)
        verdict = check(history, records, died={})
        assert verdict.lost == [] and verdict.never_ran == [], verdict.summary()
        assert verdict.stale_writes == [] and verdict.double_claims == [], verdict.summary()
        rescue_delays = []
        on_rescuer = 0
        for job_id in ids:
            rec = records[job_id]
            assert rec is not None and rec.state is JobState.COMPLETED, rec
            attempts = history.of(job_id)
            assert attempts[0].pid == cut_off.pid
            # One outcome per job: the result and the errors of its owning attempt only.
            owner = next(a for a in attempts if a.attempt == rec.attempt)
            assert rec.result == {"attempt": owner.attempt, "pid": owner.pid}, rec
            assert rec.failures == 0, rec.errors
            assert all(e.reason is FailureReason.WORKER_LOST for e in rec.errors), rec.errors
            if len(attempts) > 1:
                # Rescued after the lease: run again (one at a time, as jobs that lost a
                # worker are: by B during the cut, by either worker after the heal).
                assert attempts[1].start > cut_at + LEASE / 2, attempts
                assert attempts[1].pid in (cut_off.pid, rescuer.pid)
                on_rescuer += attempts[1].pid == rescuer.pid
                rescue_delays.append(attempts[1].start - cut_at)
        if fault != "replies":
            # The store stopped hearing A: every job it held was rescued. (With only the
            # replies lost, A's heartbeats still reach the store and may keep its leases.)
            assert len(rescue_delays) == len(ids), rescue_delays
            assert min(rescue_delays) < healed_at - cut_at, "none rescued during the cut"
            assert on_rescuer > 0
        # Every copy A finished after it lost the job was refused.
        log = cut_off.log_path.read_text()
        late = [job_id for job_id in ids
                if len(history.of(job_id)) > 1 and history.of(job_id)[0].outcome == "ok"]
        for job_id in late:
            assert f"job {job_id} attempt 1: result discarded" in log, log[-4000:]
        assert cut_off.alive(), "the cut-off worker exited"
        codes = scenario.pool.stop_all()
        assert set(codes.values()) == {0}, scenario.pool.logs()[-4000:]
        print(
            f"FIGURES R30 {scenario.kind} {fault}: cut={healed_at - cut_at:.1f}s "
            f"(lease {LEASE}s, timeouts {TIMEOUT}s) rescued={len(rescue_delays)}/{len(ids)} "
            f"first_rerun_after={min(rescue_delays, default=0):.2f}s "
            f"rerun_on_direct_worker={on_rescuer} "
            f"late_results_refused={len(late)} "
            f"took_new_work_in={resumed_at - after_at:.2f}s {verdict.summary()}"
        )


def all_completed(scenario: Scenario, ids: list[str]) -> bool:
    return all(r is not None and r.state is JobState.COMPLETED
               for r in scenario.records(ids).values())



@pytest.mark.timeout(90)
@pytest.mark.parametrize("scenario", KINDS[-1:], indirect=True)
def test_a_worker_stopped_while_black_holed_exits(scenario: Scenario) -> None:
    """SIGTERM to a worker that cannot hear the store: it must still exit (its jobs are
    recovered by their lease), not wait for replies that never come. One store (PostgreSQL
    when present; Redis measured the same, 12 s) for CI time: most of it is the worker's
    10 s bound on its final acknowledgements."""
    target = urlsplit(scenario.url)
    with TCPProxy(target.hostname or "127.0.0.1", target.port or 0) as proxy:
        scenario.pool.env[DB_ENV] = with_timeouts(_through(scenario.url, proxy.port),
                                                  scenario.kind)
        (worker,) = scenario.pool.start(1, concurrency=4, lease=LEASE, grace=1.0,
                                        app="r30_app:app")

        async def enqueue() -> list[str]:
            async with r30_app.build_app(scenario.url) as app:
                jobs = await app.get_task("r30.steps").enqueue_many([(200, 0.1)] * 2)
            return [j.id for j in jobs]

        ids = asyncio.run(enqueue())
        scenario.wait_for(lambda: all(scenario.history().of(j) for j in ids), 30,
                          "the jobs to start")
        proxy.blackhole()
        stopped_at = time.monotonic()
        worker.popen.send_signal(signal.SIGTERM)
        code = worker.popen.wait(60)
        exited_in = time.monotonic() - stopped_at
        assert code == 0, scenario.pool.logs()[-4000:]
    print(f"FIGURES R30 {scenario.kind} stop-while-black-holed: exited {exited_in:.1f}s after "
          f"SIGTERM (grace 1 s, store timeouts {TIMEOUT}s), code {code}")
