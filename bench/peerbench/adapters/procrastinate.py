"""Procrastinate on PostgreSQL (settings in bench/peers/procrastinate_app.py)."""

from __future__ import annotations

from peerbench.adapter import ASYNC_CONCURRENCY, Environment, Mode, Peer, WorkerPlan


class Procrastinate(Peer):
    key = "procrastinate"
    label = "Procrastinate"
    store = "postgresql"
    app_module = "procrastinate_app"
    requirements = ("procrastinate==3.10.0", "psycopg[binary,pool]==3.3.9")
    packages = ("procrastinate", "psycopg", "psycopg-binary", "psycopg-pool")
    sleep_mode = f"async tasks, --concurrency {ASYNC_CONCURRENCY}"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        command = (env.program("procrastinate"), "--app", "procrastinate_app.app",
                   "--log-level", "warning", "worker", "--concurrency",
                   str(ASYNC_CONCURRENCY))
        return WorkerPlan((command,) * processes, processes)

    def config(self) -> str:
        return (f"`procrastinate worker --concurrency {ASYNC_CONCURRENCY}` per process, "
                "LISTEN/NOTIFY on (default: new jobs wake the worker), jobs kept after "
                "completion (default); psycopg 3 pool; no result store, so the client polls "
                "the job's status every 0.5 ms; bulk: `batch_defer_async`.")
