"""The measurements, the same for every system:

1. enqueue N no-op jobs one by one (timed in the client), then drain them with ONE worker
   process; 2. enqueue N with the bulk API (or queue them one by one where there is none),
   then drain with TWO worker processes; 3. latency of sequential jobs against an idle worker;
4. M jobs that each sleep 10 ms, one worker process at its best concurrency. Worker peak RSS
   is read during the one-process drain and the sleep scenario.

Drains are timed by the tasks themselves (bench/peers/jobstats.py): from the moment every
worker process is up and holding its first job to the last job's finish, so interpreter
start-up, imports and connecting are excluded for every library alike.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import percentile
from peers import jobstats  # bench/peers: a namespace package seen from bench/

from peerbench.adapter import Environment, Mode, Peer
from peerbench.procs import ScenarioFailed, WorkerGroup, run_client
from peerbench.stores import Store

# Seconds from spawning the workers to the last of them holding its first job; beyond it
# the drain is reported as failed rather than timed.
MAX_STARTUP = 20.0
METRICS = ("enqueue", "bulk", "drain1", "drain2", "p50", "p99", "sleep", "rss")


@dataclass(frozen=True)
class Settings:
    jobs: int
    sleep_jobs: int
    samples: int
    warmup: int = 20
    batch: int = 1000

    def timeout(self, jobs: int) -> float:
        """Time limit of a scenario over `jobs` jobs: anything slower than 60 jobs/s (the
        slowest peer drains 140-250/s here, depending on the load) is reported as failed
        rather than allowed to hold up the run."""
        return max(60.0, jobs / 60)

    def sleep_timeout(self) -> float:
        """The sleep scenario's: a worker without concurrency (RQ) needs 10 ms and more per
        job, so 20 jobs/s is the floor there."""
        return max(60.0, self.sleep_jobs / 20)


@dataclass
class Cell:
    value: float | None = None
    note: str | None = None
    """Why there is no value: "n/a: …", "failed: …", "not available: …"."""


@dataclass
class SystemResult:
    peer: Peer
    cells: dict[str, Cell] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        cell = self.cells.get(metric)
        return cell.value if cell is not None else None


@dataclass(frozen=True)
class Drained:
    rate: float
    rss: int
    detail: dict[str, Any]


class Runner:
    """Measures one system on its store."""

    def __init__(self, peer: Peer, env: Environment, store: Store, settings: Settings,
                 log_dir: Path) -> None:
        self.peer, self.env, self.store, self.s = peer, env, store, settings
        self.log_dir = log_dir
        self.result = SystemResult(peer)

    # -- steps ---------------------------------------------------------------------------
    def run(self) -> SystemResult:
        n = self.s.jobs
        if not self._opens():
            return self.result
        self._step(f"enqueue {n:,} one by one", ("enqueue",), self._enqueue_one_by_one)
        self._step("drain with 1 worker process", ("drain1",), lambda: self._drain("drain1", 1))
        self._step(f"enqueue {n:,} in bulk", ("bulk",), self._enqueue_bulk)
        self._step("drain with 2 worker processes", ("drain2",), lambda: self._drain("drain2", 2))
        self._step(f"latency, {self.s.samples} sequential jobs", ("p50", "p99"), self._latency)
        self._step(f"{self.s.sleep_jobs:,} jobs sleeping 10 ms", ("sleep",), self._sleep)
        rss = [r for r in (self.result.details.get("rss_drain1"),
                           self.result.details.get("rss_sleep")) if r]
        self.result.cells["rss"] = (Cell(max(rss) / 2**20) if rss
                                    else Cell(note="failed: no worker ran"))
        return self.result

    def _opens(self) -> bool:
        """Reset the store and open the system's client once (connect, create its schema).
        A Backburner backend that does not open yet (one is being written) is reported as
        not available; a peer that does not open has failed."""
        print(f"… {self.peer.label}: setup", file=sys.stderr, flush=True)
        try:
            self._reset()
        except ScenarioFailed as exc:
            kind = "not available" if self.peer.is_backburner else "failed"
            print(f"  {kind}: {exc}", file=sys.stderr, flush=True)
            for metric in METRICS:
                self.result.cells[metric] = Cell(note=f"{kind}: {exc}")
            return False
        return True

    def _step(self, label: str, metrics: tuple[str, ...], action: Callable[[], None]) -> None:
        print(f"… {self.peer.label}: {label}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            action()
        except Exception as exc:
            # ScenarioFailed, or anything else: one system's trouble never ends the run.
            why = str(exc) if isinstance(exc, ScenarioFailed) else f"{type(exc).__name__}: {exc}"
            print(f"  failed: {why}", file=sys.stderr, flush=True)
            for metric in metrics:
                self.result.cells[metric] = Cell(note=f"failed: {why}")
        self.result.details[f"seconds_{metrics[0]}"] = time.perf_counter() - started

    def _enqueue_one_by_one(self) -> None:
        self._reset()
        try:
            report = self._client("enqueue", "--jobs", str(self.s.jobs))
        except ScenarioFailed:
            self._refill("noop", self.s.jobs)  # the drain still gets its queue
            raise
        self.result.cells["enqueue"] = Cell(self.s.jobs / report["seconds"])

    def _enqueue_bulk(self) -> None:
        self._reset()
        try:
            report = self._client("bulk", "--jobs", str(self.s.jobs), "--batch",
                                  str(self.s.batch))
        except ScenarioFailed:
            self._refill("noop", self.s.jobs)
            raise
        if "na" in report:
            self.result.cells["bulk"] = Cell(note=f"n/a: {report['na']}")
            self._client("fill", "--jobs", str(self.s.jobs))  # queue them one by one
            return
        self.result.cells["bulk"] = Cell(self.s.jobs / report["seconds"])
        self.result.details["bulk_api"] = report.get("api")

    def _drain(self, metric: str, processes: int) -> None:
        drained = self._run_drain("drain", processes, self.s.jobs)
        self.result.cells[metric] = Cell(drained.rate)
        self.result.details[f"rss_{metric}"] = drained.rss
        self.result.details[metric] = drained.detail

    def _latency(self) -> None:
        self._reset()
        plan = self.peer.worker(self.env, "latency", 1)
        group = WorkerGroup(plan, self.store.env(), self._log("latency"))
        try:
            report = self._client("latency", "--samples", str(self.s.samples), "--warmup",
                                  str(self.s.warmup),
                                  timeout=60 + (self.s.samples + self.s.warmup) * 0.1)
        except ScenarioFailed as exc:
            raise ScenarioFailed(group.failure() or str(exc)) from None
        finally:
            group.stop()
        samples = [s * 1000 for s in report["samples"]]
        self.result.cells["p50"] = Cell(percentile(samples, 50))
        self.result.cells["p99"] = Cell(percentile(samples, 99))
        self.result.details["latency_mean_ms"] = sum(samples) / len(samples)

    def _sleep(self) -> None:
        self._reset()
        self._client("fill", "--task", "sleep", "--jobs", str(self.s.sleep_jobs))
        drained = self._run_drain("sleep", 1, self.s.sleep_jobs)
        self.result.cells["sleep"] = Cell(drained.rate)
        self.result.details["rss_sleep"] = drained.rss
        self.result.details["sleep"] = drained.detail

    # -- helpers -------------------------------------------------------------------------
    def _reset(self) -> None:
        try:
            self.store.reset()
        except Exception as exc:  # a server gone or stuck: this scenario fails, not the run
            raise ScenarioFailed(f"store reset: {type(exc).__name__}: {exc}") from exc
        self._client("setup")

    def _refill(self, task: str, jobs: int) -> None:
        try:
            self._reset()
            self._client("fill", "--task", task, "--jobs", str(jobs))
        except ScenarioFailed as exc:
            print(f"  refill failed too: {exc}", file=sys.stderr, flush=True)

    def _client(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        limit = timeout if timeout is not None else self.s.timeout(self.s.jobs)
        return run_client(self.peer, self.env, list(args), self.store.env(), limit,
                          self._log(f"client-{args[0]}"))

    def _log(self, label: str) -> Path:
        return self.log_dir / f"{self.peer.key}-{label}.log"

    def _run_drain(self, mode: Mode, processes: int, jobs: int) -> Drained:
        plan = self.peer.worker(self.env, mode, processes)
        stats_dir = Path(tempfile.mkdtemp(prefix="bb-peers-stats-"))
        env = {**self.store.env(), jobstats.ENV_DIR: str(stats_dir),
               jobstats.ENV_BARRIER: str(plan.executing)}
        group = WorkerGroup(plan, env, self._log(f"{mode}-{processes}"))
        spawned = time.time()
        limit = self.s.sleep_timeout() if mode == "sleep" else self.s.timeout(jobs)
        deadline = time.monotonic() + limit
        try:
            while True:
                stats = jobstats.read_all(stats_dir)
                done = sum(s.count for s in stats)
                if done >= jobs:
                    break
                failure = group.failure()
                if failure:
                    raise ScenarioFailed(failure)
                if time.monotonic() > deadline:
                    raise ScenarioFailed(
                        f"timed out after {limit:.0f} s: {done:,} of {jobs:,} "
                        f"jobs done, {len(stats)} of {plan.executing} processes started")
                time.sleep(0.005)
        finally:
            rss = group.stop()
            shutil.rmtree(stats_dir, ignore_errors=True)
        if len(stats) < plan.executing:
            raise ScenarioFailed(f"only {len(stats)} of {plan.executing} worker processes "
                                 "got a job")
        begin = max(s.registered_at for s in stats)
        end = max(s.last_finish for s in stats)
        if begin - spawned > MAX_STARTUP:
            # A process that found no job while the others held theirs at the barrier: what
            # ran after that (lease expiry, redelivery) is not a drain.
            raise ScenarioFailed(f"a worker process got its first job {begin - spawned:.0f} s "
                                 "after start (too few jobs for the processes?)")
        detail = {
            "seconds": end - begin,
            "startup_seconds": begin - spawned,
            "executed": done,
            "per_process": sorted(s.count for s in stats),
        }
        return Drained(jobs / (end - begin), rss, detail)


def measure(peer: Peer, env: Environment, store: Store, settings: Settings,
            log_dir: Path) -> SystemResult:
    return Runner(peer, env, store, settings, log_dir).run()
