"""R13: the disk under a SQLite store fills up while clients enqueue over HTTP.

The store lives on a small tmpfs of its own (mounted for the test, unmounted afterwards even
on failure); a filler file takes the rest of the space, then clients keep enqueueing. What
must hold: every answer is a 202 or a 503/507 with no traceback, never a 500; reads keep
working; an embedded worker's claims and acknowledgements that meet the full disk are
retried; once space is back (the filler deleted) enqueueing succeeds again, and every job
answered 202 is there and runs. Needs root (mount); refused, the test skips loudly."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import rel_app
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backburner import JobState
from backburner.backends.sqlite.datagrams import socket_directory
from backburner.fastapi import backburner_lifespan, job_router

pytestmark = pytest.mark.reliability

SIZE = "4m"
MOST_REQUESTS = 20_000
"""Bounds the loop that waits for the disk to be full (a few thousand jobs fit)."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount_point)],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except OSError as exc:
        done = subprocess.CompletedProcess([], 1, "", str(exc))
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})"
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(f"SKIPPING R13: {reason}", stacklevel=2)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    try:
        yield mount_point
    finally:
        umounted = subprocess.run(["umount", str(mount_point)], capture_output=True,
                                  timeout=30, check=False)
        if umounted.returncode != 0:  # something still holds a file open: detach it
            subprocess.run(["umount", "-l", str(mount_point)], timeout=30, check=False)


class Heard(logging.Handler):
    """The worker's log messages, to wait for it to meet the full disk."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def fill(path: Path) -> int:
    """Write `path` until the filesystem is full; the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as filler:
        while True:
            try:
                written += filler.write(chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        # The last few bytes that fit one by one.
        with contextlib.suppress(OSError):
            while filler.write(b"\0"):
                written += 1
    return written


@pytest.mark.timeout(120)
def test_a_full_disk_answers_503_and_loses_nothing_acknowledged(small_disk: Path) -> None:
    db_path = small_disk / "jobs.db"
    url = f"sqlite:///{db_path}"
    jobs = rel_app.build_app(url)
    # An embedded worker runs the jobs meanwhile: its claims and acknowledgements meet the
    # full disk too, and must be retried, not lost, once space is back.
    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=4, lease=5.0))
    api.include_router(job_router(jobs, expose=[jobs.get_task("rel.work")]))
    heard = Heard()
    logging.getLogger("backburner.worker").addHandler(heard)
    acknowledged: list[str] = []
    codes: dict[int, int] = {}
    bodies: set[str] = set()
    try:
        with TestClient(api, raise_server_exceptions=False) as client:

            def post(ms: int = 1) -> int:
                response = client.post("/tasks/rel.work", json={"ms": ms})
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
                assert response.status_code in (202, 503, 507), response.text
                assert "Traceback" not in response.text and "sqlite3." not in response.text
                if response.status_code == 202:
                    acknowledged.append(response.json()["id"])
                else:
                    assert response.headers.get("Retry-After"), response.headers
                    bodies.add(response.json().get("detail", response.text)[:200])
                return response.status_code

            for _ in range(20):  # still running when the disk fills: acknowledged after
                assert post(ms=1500) == 202
            long_jobs_end = time.monotonic() + 1.5
            filler = small_disk / "filler"
            filled = fill(filler)
            refused = 0
            for _ in range(MOST_REQUESTS):
                if post() != 202:
                    refused += 1
                    if refused >= 20:
                        break
            assert refused >= 20, f"the disk never filled up: {codes}"
            full_at = len(acknowledged)
            # Keep the disk full until the worker has met it too (its acknowledgements of
            # the long jobs), so the retries after the space returns are exercised.
            deadline = time.monotonic() + 30
            while not any("disk is full" in m for m in heard.messages):
                assert time.monotonic() < deadline, "the worker never met the full disk"
                time.sleep(0.05)
            # And until the long jobs have ended: their acknowledgements meet it as well.
            time.sleep(max(0.0, long_jobs_end + 0.5 - time.monotonic()))
            # Reads still answer while writes cannot.
            listing = client.get("/jobs", params={"limit": 5})
            assert listing.status_code in (200, 503), listing.text
            assert "Traceback" not in listing.text
            filler.unlink()
            for _ in range(100):
                if post() == 202:
                    break
            else:
                pytest.fail(f"enqueueing did not come back with the space: {codes}")
            for _ in range(20):
                assert post() == 202
        asyncio.run(drain_and_check(url, acknowledged))
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        print(f"FIGURES R13 sqlite: tmpfs {SIZE}, filler {filled} bytes; answers {codes}; "
              f"acknowledged={len(acknowledged)} ({full_at} before space returned) lost=0; "
              f"integrity_check ok; refusals said {sorted(bodies)}; the worker logged "
              f"{[m[:90] for m in heard.messages if 'disk is full' in m][:1]}")
    finally:
        logging.getLogger("backburner.worker").removeHandler(heard)
        with contextlib.suppress(OSError):
            os.unlink(small_disk / "filler")
        shutil.rmtree(socket_directory(str(db_path)), ignore_errors=True)


async def drain_and_check(url: str, ids: list[str]) -> None:
    async with rel_app.build_app(url) as app:
        await app.worker(concurrency=16, burst=True, handle_signals=False).run()
        missing = []
        for job_id in ids:
            record = await app.get_job(job_id)
            if record is None or record.state is not JobState.COMPLETED:
                missing.append((job_id, None if record is None else record.state))
        assert missing == [], missing
