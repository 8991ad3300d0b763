"""arq (settings in bench/peers/arq_app.py)."""

from __future__ import annotations

from peerbench.adapter import ASYNC_CONCURRENCY, Environment, Mode, Peer, WorkerPlan


class Arq(Peer):
    key = "arq"
    label = "arq"
    store = "redis"
    app_module = "arq_app"
    requirements = ("arq==0.28.0", "redis[hiredis]==5.3.1")
    packages = ("arq", "redis", "hiredis")
    sleep_mode = f"async tasks, max_jobs {ASYNC_CONCURRENCY}"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        command = (env.program("arq"), "arq_app.WorkerSettings", "--custom-log-dict",
                   "arq_app.LOG_CONFIG")
        return WorkerPlan((command,) * processes, processes,
                          {"BENCH_CONCURRENCY": str(ASYNC_CONCURRENCY)})

    def config(self) -> str:
        return (f"`arq arq_app.WorkerSettings` per process, `max_jobs={ASYNC_CONCURRENCY}`, "
                "`poll_delay=0.001` (arq polls its queue, 0.5 s by default: 1 ms is its "
                "best case), queue read limit 5 x max_jobs (default); results kept (default) "
                "and polled by the client every 0.5 ms. No bulk enqueue API.")
