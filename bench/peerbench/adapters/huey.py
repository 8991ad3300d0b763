"""Huey on Redis (settings in bench/peers/huey_redis_app.py)."""

from __future__ import annotations

from peerbench.adapter import SLEEP_THREADS, Environment, Mode, Peer, WorkerPlan


class Huey(Peer):
    key = "huey"
    label = "Huey (RedisHuey)"
    store = "redis"
    app_module = "huey_redis_app"
    requirements = ("huey==3.5.4", "redis[hiredis]==8.1.0")
    packages = ("huey", "redis", "hiredis")
    sleep_mode = f"consumer threads, {SLEEP_THREADS} (`-k thread -w {SLEEP_THREADS}`)"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        if mode == "sleep":
            kind = ("-k", "thread", "-w", str(SLEEP_THREADS))
        elif processes == 1:
            kind = ("-k", "thread", "-w", "1")
        else:
            # Huey scales across processes inside one consumer.
            kind = ("-k", "process", "-w", str(processes))
        command = (env.program("huey_consumer"), "huey_redis_app.huey", *kind, "-n", "-q")
        return WorkerPlan((command,), processes)

    def config(self) -> str:
        return ("`huey_consumer huey_redis_app.huey -n -q` with `-k thread -w 1` for one "
                "process, `-k process -w 2` for two, `-k thread -w 100` for the sleep "
                "scenario; `RedisHuey(blocking=True)` (BRPOP, no polling); results read with "
                "`get(blocking=True, max_delay=0.0005)` (it polls, 0.5 ms is its best case); "
                "a task returning None stores no result; bulk: `task.map(...)` (one enqueue "
                "per task).")
