"""Smoke test of the web benchmark (`python bench/web.py`): a very short run of three rows
against a real uvicorn, worker and wrk, and the report it writes. Needs wrk (skipped with the
reason when it is missing) and Redis for the Backburner Redis row (skipped here, failing
under CI=true, when it is down). No timing is asserted. Run with
`.venv/bin/python -m pytest bench/test_web.py`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import redis
import web
from peerbench.stores import REDIS_URL
from report import write_section
from webbench import wrk

ROWS = ["noop", "background-tasks", "backburner-redis-enqueue"]


def _redis_up() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError:
        return False
    return True


def test_parse_wrk_report() -> None:
    sample = """Running 1s test @ http://127.0.0.1:8000/work
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  300.00us   5.00ms   90.00%
  Latency Distribution
     50%  750.00us
     75%    1.00ms
     90%    1.20ms
     99%    2.50ms
  9000 requests in 1.00s, 1.20MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   9000.50
Transfer/sec:      1.20MB
"""
    found = wrk.parse(sample)
    assert found.requests_per_second == 9000.5
    assert found.requests == 9000
    assert found.p50_ms == pytest.approx(0.75)
    assert found.p99_ms == pytest.approx(2.5)
    assert (found.non_2xx, found.socket_errors) == (3, 3)
    with pytest.raises(wrk.WrkError):
        wrk.parse("nothing useful")


def test_short_run_drains_and_reports(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian: apt-get install wrk)")
    rows = ROWS
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI")
        rows = ROWS[:2]
    argv = ["--duration", "1", "--warmup", "1", "--connections", "8", "--only",
            ",".join(rows), "--out", str(tmp_path)]
    args = web.parse_args(argv)
    results = web.run(args, tmp_path)
    assert [r.system.key for r in results] == rows
    for r in results:
        assert r.wrk is not None, r.note
        assert r.wrk.requests > 0
        assert r.wrk.requests_per_second > 0
        assert r.server.startswith("uvicorn")
        if r.system.jobs:
            assert r.enqueued > 0
            assert r.completed == r.enqueued, f"{r.system.key}: jobs did not drain"
            assert r.lag_ms(50) is not None
    body = web.document("python bench/web.py " + " ".join(argv),
                        web.machine("0 0 0", "test"), results, args, 1.0)
    path = tmp_path / "RESULTS.md"
    write_section(path, web.SECTION, body)
    text = path.read_text()
    assert "<!-- begin:web -->" in text
    assert "| noop endpoint |" in text
    json.dumps(web.raw(results))


def test_main_refuses_bad_options() -> None:
    with pytest.raises(SystemExit):
        web.parse_args(["--only", "nope"])
    with pytest.raises(SystemExit):
        web.parse_args(["--threads", "9", "--connections", "8"])
