"""R31: the web process cut off from the store by the network, on the network stores.

The FastAPI app (job router, no embedded worker) reaches Redis or PostgreSQL through the
fault-injecting proxy (tcp_proxy.py) with short store timeouts; a worker process connects
directly. Clients keep enqueueing over HTTP while the network fails (reset, black-hole, or
only the store's replies lost) or is only slow (latency under the timeouts: all 202), and
after it heals. What must hold: every answer is a 202 or
a 503 with `Retry-After`, never a 500, a traceback or a hang; every job answered 202
(acknowledged) exists and completes; once healed, enqueueing succeeds again by itself."""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from urllib.parse import urlsplit

import pytest
import rel_app
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rel_harness import Scenario
from services import ci_share
from tcp_proxy import TCPProxy
from test_r07_outage import _through
from test_r30_partition import KINDS, TIMEOUT, start_fault, with_timeouts

from backburner import JobState
from backburner.fastapi import backburner_lifespan, job_router

pytestmark = pytest.mark.reliability

FAULT_FOR = 3.0
SLOW = 0.05
"""Seconds added to every chunk, each way, by the `slow` fault (under the timeouts)."""
SLOW_TIMEOUT = 5.0
"""Store timeouts of the `slow` case: far above the latency it adds."""
HANG = 15.0
"""A request still unanswered after this long is a hang (the store timeouts are 0.5 s)."""

@pytest.mark.timeout(120)
# CI runs each fault on one store or both; BACKBURNER_TEST_FULL=1 runs all on both.
@pytest.mark.parametrize(("scenario", "fault"), ci_share(
    [(k, f) for k in KINDS for f in ("drop", "blackhole", "replies", "slow")],
    {("redis", "drop"), ("redis", "blackhole"), ("redis", "replies"),
     ("postgres", "blackhole"), ("postgres", "slow")},
), indirect=["scenario"])
def test_the_web_process_cut_off_answers_503_and_loses_nothing(
    scenario: Scenario, fault: str
) -> None:
    target = urlsplit(scenario.url)
    with TCPProxy(target.hostname or "127.0.0.1", target.port or 0) as proxy:
        # The slow link adds 0.1 s per round trip; a PostgreSQL enqueue makes several and a
        # new connection a dozen: under CI load that crossed 0.5 s timeouts (a 503 on a link
        # that is only slow), so the slow case gets timeouts well above what it adds.
        timeout = SLOW_TIMEOUT if fault == "slow" else TIMEOUT
        url = with_timeouts(_through(scenario.url, proxy.port), scenario.kind, timeout)
        jobs = rel_app.build_app(url)
        api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False))
        api.include_router(job_router(jobs, expose=[jobs.get_task("rel.work")]))
        scenario.pool.start(1, concurrency=8)
        acknowledged: list[str] = []
        answers: dict[str, list[float]] = {}
        replayed: list[str] = []
        keys = itertools.count()
        key = str(next(keys))
        with (TestClient(api, raise_server_exceptions=False) as client,
              concurrent.futures.ThreadPoolExecutor(1) as caller):

            def post() -> int:
                """One request; a client whose request got a 503 sends it again with the
                same Idempotency-Key (the store may have taken it, its reply lost)."""
                nonlocal key
                started = time.monotonic()
                # In a thread of its own: a hang fails the test instead of freezing it.
                response = caller.submit(
                    client.post, "/tasks/rel.work", json={"ms": 5},
                    headers={"Idempotency-Key": f"r31-{key}"},
                ).result(HANG)
                answers.setdefault(str(response.status_code), []).append(
                    time.monotonic() - started)
                assert response.status_code in (202, 503), response.text
                assert "Traceback" not in response.text
                if response.status_code == 503:
                    assert response.headers.get("Retry-After"), response.headers
                    return 503
                acknowledged.append(response.json()["id"])
                replayed.extend(response.headers.get_list("Idempotent-Replayed"))
                key = str(next(keys))
                return 202

            for _ in range(5):
                assert post() == 202
            if fault == "slow":
                proxy.latency(SLOW)
            else:
                start_fault(proxy, fault)
            cut_at = time.monotonic()
            during = []
            while time.monotonic() < cut_at + FAULT_FOR:
                during.append(post())
            proxy.heal()
            healed_at = time.monotonic()
            deadline = healed_at + 30
            while post() != 202:
                assert time.monotonic() < deadline, "enqueueing did not come back"
            back_at = time.monotonic()
            for _ in range(5):
                assert post() == 202
        if fault == "slow":
            # A slow network within the timeouts is only slow: nothing refused.
            assert set(during) == {202}, during
        else:
            assert 503 in during, f"the fault was not seen: {during}"
        scenario.wait_all_terminal(60)
        records = scenario.records(acknowledged)
        lost = [job_id for job_id, rec in records.items()
                if rec is None or rec.state is not JobState.COMPLETED]
        assert lost == [], lost
        # Retried with their keys, requests whose reply was lost made no second job.
        stored = sum(scenario.states().values())
        assert stored == len(acknowledged) == len(set(acknowledged)), (stored, acknowledged)
        slowest = max(max(times) for times in answers.values())
        print(
            f"FIGURES R31 {scenario.kind} {fault}: during {FAULT_FOR:.0f}s fault "
            f"{during.count(202)}x202 {during.count(503)}x503 other=0; slowest answer "
            f"{slowest:.2f}s; enqueue back {back_at - healed_at:.2f}s after the heal; "
            f"acknowledged={len(acknowledged)} (of them replayed by key {len(replayed)}) "
            f"lost=0 stored={stored}"
        )
