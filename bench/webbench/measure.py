"""One row of the web benchmark: an empty store, the web server, the worker, a warm-up, the
measured wrk run, then the drain of everything that run enqueued."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import percentile
from peerbench.adapter import Environment, WorkerPlan
from peerbench.procs import PEERS_DIR, WorkerGroup, child_env
from peerbench.stores import Store

from webbench import wrk
from webbench.systems import System

APPS_DIR = Path(__file__).resolve().parent / "apps"
LAG_SUFFIX = ".lag"
READY_TIMEOUT = 60.0
# Waiting for the worker to finish what was enqueued is bounded: a system that falls behind
# shows it in "jobs completed / enqueued" instead of stalling the run.
DRAIN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Load:
    duration: float
    warmup: float
    connections: int
    threads: int


@dataclass
class RowResult:
    system: System
    wrk: wrk.WrkResult | None = None
    enqueued: int = 0
    completed: int = 0
    lags: list[float] = field(default_factory=list)
    drain_seconds: float | None = None
    server: str = ""
    note: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    rounds: list[float] = field(default_factory=list)  # requests/s of every round

    def lag_ms(self, q: float) -> float | None:
        return percentile(self.lags, q) * 1000 if self.lags else None


def port() -> int:
    # tests/services.py's free_port(), without importing the test package from here.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(system: System, env: Environment, store: Store | None, load: Load,
            log_dir: Path) -> RowResult:
    result = RowResult(system)
    lag_dir = Path(tempfile.mkdtemp(prefix="bb-web-lag-"))
    groups: list[WorkerGroup] = []
    try:
        extra: dict[str, str] = {}
        if store is not None:
            store.reset()
            extra.update(store.env())
        extra["BENCH_LAG_DIR"] = str(lag_dir)
        paths = [os.environ.get("BENCH_BACKBURNER_SRC", ""), str(APPS_DIR), str(PEERS_DIR)]
        extra["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        prepare = system.prepare(env)
        if prepare is not None:
            done = subprocess.run(list(prepare), cwd=PEERS_DIR, env=child_env(extra),
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"{prepare[1]} … failed: {done.stderr.strip()[-300:]}")
        listen = port()
        base = f"http://127.0.0.1:{listen}"
        # uvicorn's defaults otherwise (`--loop auto --http auto`: uvloop and httptools when
        # installed); no access log, as in production behind a proxy that keeps one.
        server = (env.python, "-m", "uvicorn", f"{system.module}:api", "--host", "127.0.0.1",
                  "--port", str(listen), "--log-level", "warning", "--no-access-log")
        groups.append(WorkerGroup(WorkerPlan((server,), 1), extra,
                                  log_dir / f"web-{system.key}-server.log"))
        stats = _ready(base, groups[0])
        result.server = f"uvicorn, loop {stats['loop']}, HTTP {stats['http']}"
        worker = system.worker(env)
        if worker is not None:
            groups.append(WorkerGroup(WorkerPlan((worker,), 1), extra,
                                      log_dir / f"web-{system.key}-worker.log"))
        url = base + system.path
        # Warm-up: connections, pools, the worker's start-up; its jobs drained and forgotten.
        wrk.run(url, load.warmup, load.connections, load.threads)
        before = _settled(base)
        if system.jobs:
            _drain(lag_dir, before, groups, time.monotonic() + DRAIN_TIMEOUT)
            for path in lag_dir.glob(f"*{LAG_SUFFIX}"):
                path.write_text("")  # writers append (O_APPEND): they carry on at 0
        result.wrk = wrk.run(url, load.duration, load.connections, load.threads)
        ended = time.monotonic()
        result.enqueued = _settled(base) - before
        if system.jobs:
            result.completed = _drain(lag_dir, result.enqueued, groups,
                                      ended + DRAIN_TIMEOUT)
            if result.completed >= result.enqueued:
                result.drain_seconds = time.monotonic() - ended
            result.lags = _lags(lag_dir)
        problem = next((p for g in groups if (p := g.failure())), None)
        if problem:
            result.note = problem
    except Exception as exc:
        result.note = f"{type(exc).__name__}: {exc}"
    finally:
        for group in reversed(groups):  # the worker first, then the server
            group.stop()
        shutil.rmtree(lag_dir, ignore_errors=True)
    return result


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        found: dict[str, Any] = json.loads(response.read())
        return found


def _stats(base: str) -> dict[str, Any]:
    return _get(base + "/stats")


def _settled(base: str) -> int:
    """Jobs enqueued so far, once requests still in flight when wrk stopped are answered
    (wrk exits without waiting for them; the server finishes them)."""
    last = _stats(base)["enqueued"]
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = _stats(base)["enqueued"]
        if now == last:
            break
        last = now
    return int(last)


def _ready(base: str, server: WorkerGroup) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        problem = server.failure()
        if problem:
            raise RuntimeError(f"web server: {problem}")
        try:
            return _stats(base)
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"web server not answering within {READY_TIMEOUT:.0f} s")


def _count(lag_dir: Path) -> int:
    total = 0
    for path in lag_dir.glob(f"*{LAG_SUFFIX}"):
        with path.open("rb") as f:
            total += f.read().count(b"\n")
    return total


def _drain(lag_dir: Path, expected: int, groups: list[WorkerGroup], deadline: float) -> int:
    """Jobs started so far, once `expected` have or the deadline passed (or a process died)."""
    while True:
        done = _count(lag_dir)
        if done >= expected or time.monotonic() > deadline:
            return done
        if any(g.failure() for g in groups):
            return done
        time.sleep(0.1)


def _lags(lag_dir: Path) -> list[float]:
    lags: list[float] = []
    for path in lag_dir.glob(f"*{LAG_SUFFIX}"):
        lags += [float(line) for line in path.read_text().split()]
    return lags
