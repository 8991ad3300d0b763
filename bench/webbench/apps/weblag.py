"""What every web app and worker of bench/web.py shares (standard library only, plus
FastAPI where the routes are added): the lag recorder, the count of jobs enqueued, and the
`/stats` route the harness reads.

Lag: the endpoint passes `time.time()` as the job's argument; the task, as it starts,
appends `time.time() - enqueued_at` to a file of its own process in `$BENCH_LAG_DIR` with
one O_APPEND write (a few microseconds, no round trip to any store: the same cost for every
library). The harness counts the lines to see the queue drained and takes the percentiles.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

ENV_DIR = "BENCH_LAG_DIR"
SUFFIX = ".lag"

_fd: int | None = None
_pid = 0
_lock = threading.Lock()
_enqueued = 0


def record(enqueued_at: float) -> None:
    """Called first thing by the benchmark task."""
    lag = time.time() - enqueued_at
    global _fd, _pid
    if _fd is None or _pid != os.getpid():  # opened per process: forked workers too
        _pid = os.getpid()
        path = os.path.join(os.environ[ENV_DIR], f"{_pid}{SUFFIX}")
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    # One write of one short line: atomic with O_APPEND, so threads need no lock.
    os.write(_fd, f"{lag:.6f}\n".encode())


def enqueued() -> None:
    """Called by the endpoint once its job is handed over (`def` endpoints run in threads)."""
    global _enqueued
    with _lock:
        _enqueued += 1


def install(api: Any) -> None:
    """`GET /stats`: jobs enqueued so far, and which event loop and HTTP parser serve."""

    @api.get("/stats")
    async def stats() -> dict[str, Any]:
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        http = "httptools" if "uvicorn.protocols.http.httptools_impl" in sys.modules else "h11"
        return {"enqueued": _enqueued, "loop": loop, "http": http, "pid": os.getpid()}
