"""Celery, Redis broker and result backend (settings in bench/peers/celery_app.py)."""

from __future__ import annotations

from peerbench.adapter import SLEEP_THREADS, Environment, Mode, Peer, WorkerPlan

PREFETCH = 128


class Celery(Peer):
    key = "celery"
    label = "Celery"
    store = "redis"
    app_module = "celery_app"
    requirements = ("celery[redis]==5.7.0", "redis[hiredis]==8.1.0")
    packages = ("celery", "kombu", "redis", "hiredis")
    sleep_mode = f"thread pool, {SLEEP_THREADS} threads (`--pool threads`)"

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        # The solo pool runs tasks in the consumer process itself: for tiny tasks it beats
        # prefork, which ships each task to a child over a pipe. Two processes are two solo
        # workers (distinct node names), as one would scale them.
        pool = (("--pool", "threads", "--concurrency", str(SLEEP_THREADS)) if mode == "sleep"
                else ("--pool", "solo"))
        commands = tuple(
            (env.program("celery"), "-A", "celery_app", "worker", "--loglevel", "WARNING",
             *pool, "--prefetch-multiplier", str(PREFETCH), "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", f"bench{n}@%h")
            for n in range(processes)
        )
        return WorkerPlan(commands, processes)

    def config(self) -> str:
        return (f"`celery worker --pool solo --prefetch-multiplier {PREFETCH} "
                "--without-gossip --without-mingle --without-heartbeat` per process "
                "(Celery's optimizing guide: a large prefetch multiplier, 64 or 128, for "
                "many short tasks; acks on receipt, the default); sleep scenario "
                f"`--pool threads --concurrency {SLEEP_THREADS}`; `ignore_result=True` on the "
                "no-op and sleep tasks (its task guide: storing unread results wastes time), "
                "results in Redis for `ping` (`get()` waits on pub/sub); bulk: "
                "`group(...).apply_async()` (one message per task; `chunks` would bundle many "
                "calls into one message, so it is not the same work).")
