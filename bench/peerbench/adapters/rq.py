"""RQ with its SimpleWorker (settings in bench/peers/rq_app.py)."""

from __future__ import annotations

from peerbench.adapter import Environment, Mode, Peer, WorkerPlan
from peerbench.stores import REDIS_URL


class RQ(Peer):
    key = "rq"
    label = "RQ"
    store = "redis"
    app_module = "rq_app"
    requirements = ("rq==2.12.0", "redis[hiredis]==8.1.0")
    packages = ("rq", "redis", "hiredis")
    sleep_mode = "none: one job at a time per worker process (1 process)"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        command = (env.program("rq"), "worker", "bench", "--url", REDIS_URL,
                   "--worker-class", "rq.worker.SimpleWorker", "--logging_level", "WARNING")
        return WorkerPlan((command,) * processes, processes)

    def config(self) -> str:
        return ("`rq worker --worker-class rq.worker.SimpleWorker` per process (RQ's "
                "performance notes: SimpleWorker, no fork per job, is the fastest); results "
                "waited for with `job.latest_result(timeout=…)` (blocking XREAD); bulk: "
                "`Queue.enqueue_many` (one pipeline per call). No in-process concurrency: "
                "the sleep scenario runs jobs one at a time.")
