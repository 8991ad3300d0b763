"""Backburner itself, once per store, from the harness's own interpreter (the repository's
.venv, where it is installed from src/)."""

from __future__ import annotations

import subprocess

from peerbench.adapter import ASYNC_CONCURRENCY, Environment, Mode, Peer, StoreKind, WorkerPlan

BACKENDS: dict[StoreKind, tuple[str, str]] = {
    "sqlite": ("backburner.backends.sqlite", "SQLiteBackend"),
    "redis": ("backburner.backends.redis", "RedisBackend"),
    "postgresql": ("backburner.backends.postgres", "PostgresBackend"),
}


class Backburner(Peer):
    app_module = "backburner_app"
    packages = ("backburner", "redis", "hiredis", "asyncpg")
    sleep_mode = f"async tasks, concurrency {ASYNC_CONCURRENCY}"

    def __init__(self, store: StoreKind) -> None:
        self.store = store
        self.key = f"backburner-{store}"
        self.label = f"Backburner ({store})"

    def unavailable(self, env: Environment) -> str | None:
        # The Redis and PostgreSQL backends are being written while this harness exists:
        # measure them as soon as they import, say so plainly until then.
        # (A package directory without its __init__.py still imports, as a namespace
        # package: ask for the class.) Whether it then opens is the first step of a run.
        module, name = BACKENDS[self.store]
        probe = subprocess.run([env.python, "-c", f"from {module} import {name}"],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return None
        lines = probe.stderr.strip().splitlines()
        return f"`{module}.{name}` does not import ({lines[-1] if lines else 'no error text'})"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        command = (env.python, "-m", "backburner", "--log-level", "WARNING", "worker",
                   "backburner_app:app", "--concurrency", str(ASYNC_CONCURRENCY))
        return WorkerPlan((command,) * processes, processes)

    def config(self) -> str:
        return (f"`backburner worker backburner_app:app --concurrency {ASYNC_CONCURRENCY}`, "
                "one such process per worker process (claims in batches of up to 100, the "
                "default; uvloop, the worker's default when installed); async tasks; bulk "
                "enqueue with `enqueue_many`; results waited for with `await job.result()`. "
                "Redis URL `?prefix=bench`, PostgreSQL `?schema=bench_backburner`.")
