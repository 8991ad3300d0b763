"""The rows of the web benchmark: which app serves, which endpoint, which worker drains.

Web apps and the task they enqueue live in `webbench/apps/` (one module per system, run
inside that system's virtualenv); they reuse the brokers and settings of `bench/peers/`, so a
peer is configured here exactly as in the peers benchmark (`peerbench/adapters/*.py` say
why). Workers: one process, the peers benchmark's configuration (1 process, its concurrency).
"""

from __future__ import annotations

from dataclasses import dataclass

from peerbench.adapter import ASYNC_CONCURRENCY, Environment, Peer, StoreKind
from peerbench.adapters.arq import Arq
from peerbench.adapters.celery import PREFETCH, Celery
from peerbench.adapters.dramatiq import THREADS, Dramatiq
from peerbench.adapters.huey import Huey
from peerbench.adapters.procrastinate import Procrastinate
from peerbench.adapters.saq import SAQ
from peerbench.adapters.taskiq import Taskiq

# What the web process gets besides the library: `pip install backburner[fastapi]` gives
# uvicorn[standard] (uvloop and httptools); the same pins as requirements/lock.txt.
WEB_REQUIREMENTS = ("fastapi==0.165.0", "uvicorn[standard]==0.55.0", "uvloop==0.23.0",
                    "httptools==0.9.0")
VENV_SUFFIX = "-web"


@dataclass(frozen=True)
class System:
    key: str
    label: str
    store: StoreKind | None  # None: no job store (noop, in-memory BackgroundTasks)
    module: str  # webbench/apps/<module>.py, its FastAPI app is `api`
    path: str  # the endpoint wrk loads
    call: str  # how the endpoint hands over its job (for the table)
    peer: Peer | None = None  # None: the repository's .venv
    jobs: bool = True
    in_process: bool = False  # BackgroundTasks: no worker process

    @property
    def is_backburner(self) -> bool:
        return self.key.startswith("backburner")

    def worker(self, env: Environment) -> tuple[str, ...] | None:
        """The command of the one worker process, or None."""
        if not self.jobs or self.in_process:
            return None
        m = self.module
        if self.is_backburner:
            return (env.python, "-m", "backburner", "--log-level", "WARNING", "worker",
                    f"{m}:jobs", "--concurrency", str(ASYNC_CONCURRENCY))
        key = self.peer.key if self.peer else ""
        if key == "celery":
            return (env.program("celery"), "-A", m, "worker", "--loglevel", "WARNING",
                    "--pool", "solo", "--prefetch-multiplier", str(PREFETCH),
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-n", "web@%h")
        if key == "dramatiq":
            # The peers benchmark's worker (1 ms idle poll), with this module's actor loaded.
            return (env.python, "-c",
                    f"import {m}, runpy; runpy.run_module('dramatiq_worker', "
                    "run_name='__main__')", "--threads", str(THREADS))
        if key == "arq":
            return (env.program("arq"), f"{m}.WorkerSettings", "--custom-log-dict",
                    "arq_app.LOG_CONFIG")
        if key == "saq":
            return (env.program("saq"), f"{m}.settings", "--workers", "1", "--quiet")
        if key == "taskiq":
            return (env.program("taskiq"), "worker", f"{m}:broker", "--workers", "1",
                    "--max-async-tasks", str(ASYNC_CONCURRENCY), "--log-level", "WARNING")
        if key == "huey":
            return (env.program("huey_consumer"), f"{m}.huey", "-k", "thread", "-w", "1",
                    "-n", "-q")
        if key == "procrastinate":
            return (env.program("procrastinate"), "--app", f"{m}.app", "--log-level",
                    "warning", "worker", "--concurrency", str(ASYNC_CONCURRENCY))
        raise ValueError(f"no worker command for {self.key}")

    def prepare(self, env: Environment) -> tuple[str, ...] | None:
        """A command to run once the store is empty, before the server starts."""
        if self.peer is not None and self.peer.key == "procrastinate":
            return (env.program("procrastinate"), "--app", f"{self.module}.app", "schema",
                    "--apply")
        return None


def all_systems() -> list[System]:
    rows = [
        System("noop", "noop endpoint", None, "web_plain", "/noop", "returns only",
               jobs=False),
        System("background-tasks", "FastAPI BackgroundTasks (in memory)", None, "web_plain",
               "/work", "`background_tasks.add_task`", in_process=True),
    ]
    for store in ("sqlite", "redis", "postgresql"):
        rows.append(System(f"backburner-{store}-background",
                           f"Backburner {store}, DurableBackgroundTasks", store,
                           "web_backburner", "/background", "`background_tasks.add_task`"))
        rows.append(System(f"backburner-{store}-enqueue", f"Backburner {store}, enqueue",
                           store, "web_backburner", "/enqueue", "`await task.enqueue()`"))
    peers: list[tuple[Peer, str]] = [
        (Celery(), "`task.delay()` in a `def` endpoint"),
        (Dramatiq(), "`actor.send()` in a `def` endpoint"),
        (Arq(), "`await pool.enqueue_job()`"),
        (SAQ(), "`await queue.enqueue()`"),
        (Taskiq(), "`await task.kiq()`"),
        (Huey(), "`task()` in a `def` endpoint"),
        (Procrastinate(), "`await task.defer_async()`"),
    ]
    for peer, call in peers:
        rows.append(System(peer.key, f"{peer.label}, {peer.store}", peer.store,
                           f"web_{peer.key}", "/work", call, peer=peer))
    return rows
