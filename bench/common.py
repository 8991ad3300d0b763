"""Helpers shared by the benchmark scenarios: timing, percentiles, fresh databases, event
loops, and the one-JSON-line protocol between the benchmark and its child processes."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
# A child that has not reported by then is stuck; killing it keeps the run bounded.
CHILD_TIMEOUT = 120.0
LOOPS = ("asyncio", "uvloop")

T = TypeVar("T")


def quiet_logging() -> None:
    """WARNING and up only: per-job INFO lines would be part of what we time, and they are
    not what we want to measure (production deployments choose their own level)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def run_async(main: Callable[[], Coroutine[Any, Any, T]], loop: str = "asyncio") -> T:
    """Run `main()` on the chosen event loop implementation."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())
    return asyncio.run(main())


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always one of the measured values."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@contextmanager
def fresh_db(label: str) -> Iterator[Path]:
    """A database path in a new temporary directory, removed afterwards together with the
    notification sockets directory Backburner derives from it."""
    directory = Path(tempfile.mkdtemp(prefix=f"bb-bench-{label}-"))
    path = directory / "jobs.db"
    try:
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        _remove_socket_directory(path)


def _remove_socket_directory(path: Path) -> None:
    try:
        from backburner.backends.sqlite.datagrams import socket_directory
    except ImportError:  # the layout moved; a leftover empty directory is harmless
        return
    shutil.rmtree(socket_directory(str(path)), ignore_errors=True)


# -- child processes -----------------------------------------------------------------------
def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    """Start `python bench/<script> args...`; it reports one JSON line on stdout."""
    return subprocess.Popen(
        [sys.executable, str(BENCH_DIR / script), *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def collect(proc: subprocess.Popen[str], timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    """Wait for a child and return the JSON object it printed last."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{proc.args!r} did not finish within {timeout:.0f}s") from None
    lines = [line for line in out.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{proc.args!r} failed with exit code {proc.returncode}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> dict[str, Any]:
    """Ask a serving child to stop and collect its report."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    return collect(proc, timeout=30.0)


def emit(report: dict[str, Any]) -> None:
    """The child side of `collect`."""
    print(json.dumps(report), flush=True)


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0
