"""taskiq + taskiq-redis (settings in bench/peers/taskiq_app.py)."""

from __future__ import annotations

from peerbench.adapter import ASYNC_CONCURRENCY, Environment, Mode, Peer, WorkerPlan


class Taskiq(Peer):
    key = "taskiq"
    label = "taskiq"
    store = "redis"
    app_module = "taskiq_app"
    requirements = ("taskiq==0.13.0", "taskiq-redis==1.2.4", "redis[hiredis]==8.1.0")
    packages = ("taskiq", "taskiq-redis", "redis", "hiredis")
    sleep_mode = f"async tasks, --max-async-tasks {ASYNC_CONCURRENCY}"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        # taskiq's own supervisor starts the worker processes: one command for all.
        command = (env.program("taskiq"), "worker", "taskiq_app:broker", "--workers",
                   str(processes), "--max-async-tasks", str(ASYNC_CONCURRENCY),
                   "--log-level", "WARNING")
        return WorkerPlan((command,), processes)

    def config(self) -> str:
        return (f"`taskiq worker taskiq_app:broker --workers P --max-async-tasks "
                f"{ASYNC_CONCURRENCY}` (a supervisor process plus P worker processes); "
                "`RedisStreamBroker` (acknowledged, reads 100 messages per XREADGROUP) with "
                "`RedisAsyncResultBackend`, as in the taskiq-redis README; acks when the "
                "result is saved (default); results polled by the client every 0.5 ms "
                "(`wait_result(check_interval=0.0005)`). No bulk enqueue API.")
