"""A worker's own metrics endpoint (`metrics_port=`, `backburner worker --metrics-port`): what
it serves after real jobs, its tiny HTTP surface, and a port already taken refused at start
(ConfigurationError; exit 2 from the command). The Prometheus scrape of a whole fleet is
tests/reliability/test_fleet_metrics.py."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from backburner import Backburner
from backburner.cli import cli
from backburner.errors import ConfigurationError
from backburner.metrics import JobMetrics
from backburner.worker import Worker


def build(url: str) -> Backburner:
    app = Backburner(url, poll_interval=0.1)

    @app.task(name="ok", retries=0)
    async def ok() -> str:
        return "fine"

    @app.task(name="boom", retries=0, queue="risky")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    return app


async def http(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()  # the request is all there is: a partial one is answered at once
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    run = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            while worker.metrics_address is None:
                assert not run.done(), run.exception()
                await asyncio.sleep(0.01)
        yield run
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
        await worker.app.close()


async def test_worker_serves_its_metrics_after_real_jobs(tmp_path: Path) -> None:
    app = build(f"sqlite:///{tmp_path}/w.db")
    worker = app.worker(metrics_port=0, handle_signals=False, poll_interval=0.1)
    async with running(worker):
        address = worker.metrics_address
        assert address is not None and address[0] == "127.0.0.1"
        ok = await app.tasks["ok"].enqueue()
        boom = await app.tasks["boom"].enqueue()
        assert await ok.result(timeout=10) == "fine"
        await boom.wait(timeout=10)
        # The outcome is counted once the acknowledgement is accepted: wait for it.
        async with asyncio.timeout(10):
            while True:
                status, body = await http(address[1], b"GET /metrics HTTP/1.1\r\n\r\n")
                assert status == 200
                if b'outcome="failed"' in body and b'outcome="completed"' in body:
                    break
                await asyncio.sleep(0.05)
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert got[("backburner_job_outcomes_total", (("outcome", "failed"), ("queue", "risky"),
                                                 ("reason", "error"), ("task", "boom")))] == 1
    assert got[("backburner_job_outcomes_total", (("outcome", "completed"),
                                                 ("queue", "default"), ("reason", ""),
                                                 ("task", "ok")))] == 1
    assert got[("backburner_job_run_seconds_count", (("queue", "default"), ("task", "ok")))] == 1
    assert got[("backburner_job_wait_seconds_count", (("queue", "risky"), ("task", "boom")))] == 1
    assert got[("backburner_jobs_running", (("queue", "default"), ("task", "ok")))] == 0
    assert got[("backburner_claim_batch_size_sum", ())] == 2
    assert got[("backburner_store_round_trip_seconds_count", (("operation", "claim"),))] >= 1
    assert got[("backburner_store_round_trip_seconds_count", (("operation", "completion"),))] == 1
    assert got[("backburner_store_round_trip_seconds_count", (("operation", "failure"),))] == 1
    assert got[("backburner_jobs", (("queue", "risky"), ("state", "failed")))] == 1
    assert got[("backburner_oldest_pending_age_seconds", (("queue", "default"),))] == 0
    assert got[("backburner_workers", ())] == 1
    assert got[("backburner_queue_workers", (("queue", "risky"),))] == 1


async def test_the_oldest_ready_job_has_an_age(tmp_path: Path) -> None:
    app = build(f"sqlite:///{tmp_path}/o.db")
    await app.open()
    try:
        await app.tasks["ok"].enqueue()
        metrics = JobMetrics.of(app)
        assert JobMetrics.of(app) is metrics  # one registry per app
        async with asyncio.timeout(10):
            while b'backburner_oldest_pending_age_seconds{queue="default"} 0.0' in (
                    await metrics.render()):
                await asyncio.sleep(0.02)
    finally:
        await app.close()


async def test_the_endpoint_answers_probes_and_refuses_the_rest(tmp_path: Path) -> None:
    app = build(f"sqlite:///{tmp_path}/h.db")
    worker = app.worker(metrics_port=0, handle_signals=False)
    async with running(worker):
        address = worker.metrics_address
        assert address is not None
        port = address[1]
        assert await http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == (200, b"ok\n")
        assert (await http(port, b"GET /nothing HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await http(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await http(port, b"\x00garbage without an end"))[0] == 400


def test_a_port_in_use_is_refused_at_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = build(f"sqlite:///{tmp_path}/p.db")
        worker = app.worker(metrics_port=port, handle_signals=False)
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}"):
            asyncio.run(worker.run())
        result = CliRunner().invoke(
            cli, ["worker", "tests.unit.test_worker_metrics:cli_app", "--metrics-port",
                  str(port), "--burst", "--no-uvloop"],
            env={"BACKBURNER_TEST_DB": f"{tmp_path}/p.db"},
        )
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_a_bad_port_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="metrics_port"):
        Backburner("memory://").worker(metrics_port=70000)


def __getattr__(name: str) -> Backburner:
    # `cli_app` for the command above, built on first use from the test's database.
    if name == "cli_app":
        import os

        return build(f"sqlite:///{os.environ['BACKBURNER_TEST_DB']}")
    raise AttributeError(name)


def test_without_prometheus_client_only_metrics_need_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None in sys.modules makes the import fail, as a missing fastapi extra would.
    monkeypatch.setitem(sys.modules, "backburner.metrics", None)
    app = Backburner("memory://")
    app.worker()  # no metrics asked for: nothing to import
    with pytest.raises(ConfigurationError, match="prometheus-client"):
        app.worker(metrics_port=0)
