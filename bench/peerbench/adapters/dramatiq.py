"""Dramatiq with its Redis broker (settings in bench/peers/dramatiq_app.py)."""

from __future__ import annotations

from peerbench.adapter import SLEEP_THREADS, Environment, Mode, Peer, WorkerPlan

THREADS = 8  # Dramatiq's default worker threads per process


class Dramatiq(Peer):
    key = "dramatiq"
    label = "Dramatiq"
    store = "redis"
    app_module = "dramatiq_app"
    requirements = ("dramatiq[redis]==2.2.1", "redis[hiredis]==8.1.0")
    packages = ("dramatiq", "redis", "hiredis")
    sleep_mode = f"worker threads, {SLEEP_THREADS}"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        threads = SLEEP_THREADS if mode == "sleep" else THREADS
        command = (env.python, "dramatiq_worker.py", "--threads", str(threads))
        return WorkerPlan((command,) * processes, processes)

    def config(self) -> str:
        return (f"one `dramatiq.Worker(broker, worker_threads={THREADS}, worker_timeout=1)` "
                "per process (bench/peers/dramatiq_worker.py: what the `dramatiq` command "
                "runs per process; its default 8 threads and prefetch of 2 per thread; "
                "`worker_timeout` 1 ms instead of 1 s so an idle worker polls Redis every "
                f"millisecond, its best-case latency); sleep scenario {SLEEP_THREADS} "
                "threads; Results middleware with the Redis backend for `ping` "
                "(`get_result(block=True)`); bulk: `group(...).run()` (one enqueue per "
                "message).")
