"""Huey scenarios, mirroring the Backburner ones."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bb_scenarios import WARMUP
from common import collect, fresh_db, spawn, stop
from huey_app import RESULT_POLL_SECONDS, make_huey


@dataclass(frozen=True)
class HueyDrain:
    enqueue_rate: float
    """Huey has no batch enqueue: one transaction per task."""
    seconds: float
    jobs: int

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def drain(jobs: int) -> HueyDrain:
    """Enqueue `jobs` no-ops one by one (timed), then drain them with one consumer process."""
    with fresh_db("huey-drain") as db:
        bench = make_huey(db)
        started = time.perf_counter()
        for _ in range(jobs):
            bench.noop()
        enqueue_seconds = time.perf_counter() - started
        bench.huey.storage.close()
        report = collect(spawn("huey_worker.py", "--db", str(db), "--mode", "drain",
                               "--jobs", str(jobs)))
    if not report["finished"]:
        raise RuntimeError(f"huey drain: {report['processed']} of {jobs} tasks completed")
    return HueyDrain(jobs / enqueue_seconds, report["seconds"], jobs)


def latency(samples: int) -> list[float]:
    """Seconds from enqueue to the result read back, consumer in another process."""
    with fresh_db("huey-latency") as db:
        bench = make_huey(db)
        proc = spawn("huey_worker.py", "--db", str(db), "--mode", "serve")
        try:
            bench.ping().get(blocking=True, timeout=60)  # waits out the child's start-up
            timings = []
            for n in range(WARMUP + samples):
                started = time.perf_counter()
                result = bench.ping()
                result.get(blocking=True, timeout=5, backoff=1.0, max_delay=RESULT_POLL_SECONDS)
                if n >= WARMUP:
                    timings.append(time.perf_counter() - started)
        finally:
            stop(proc)
            bench.huey.storage.close()
    return timings
