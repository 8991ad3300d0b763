"""SAQ on Redis (settings in bench/peers/saq_app.py)."""

from __future__ import annotations

from peerbench.adapter import ASYNC_CONCURRENCY, Environment, Mode, Peer, WorkerPlan


class SAQ(Peer):
    key = "saq"
    label = "SAQ"
    store = "redis"
    app_module = "saq_app"
    # typing_extensions: imported by saq 0.26.4 but not declared as a dependency.
    requirements = ("saq[redis,hiredis]==0.26.4", "typing_extensions")
    packages = ("saq", "redis", "hiredis")
    sleep_mode = f"async tasks, concurrency {ASYNC_CONCURRENCY}"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        command = (env.program("saq"), "saq_app.settings", "--workers", str(processes),
                   "--quiet")
        return WorkerPlan((command,), processes, {"BENCH_CONCURRENCY": str(ASYNC_CONCURRENCY)})

    def config(self) -> str:
        return (f"`saq saq_app.settings --workers P`, `concurrency={ASYNC_CONCURRENCY}` per "
                "process (each slot dequeues with a blocking BLMOVE); results waited for with "
                "`Queue.apply(poll_interval=0.0005)` (polls; `job.refresh(until_complete=…)` "
                "waits on pub/sub but misses a completion that lands between its read and its "
                "SUBSCRIBE, so a sequential run stalls on it). No bulk enqueue API (`map` "
                "enqueues concurrently, then waits for all results).")
