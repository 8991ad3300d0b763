"""Helpers for testing code that uses Backburner, on the in-memory store.

With pytest, the plugin (`backburner.pytest_plugin`, loaded by itself once Backburner is
installed) gives a test the `backburner` fixture: your own app, switched for that test to a
fresh in-memory store on a `ManualClock`, with `drain` and `assert_enqueued`. Without pytest,
or for an app of the test's own:

    from backburner import Backburner
    from backburner.testing import ManualClock, drain, memory_backend

    clock = ManualClock()
    app = Backburner(backend=memory_backend(clock))
    ...                                   # register tasks, call your code that enqueues
    await drain(app, run_scheduled=True)  # runs everything, retries and delays included,
                                          # by moving the clock instead of sleeping

    with memory_store(my_app) as jobs:    # a module-level app, on memory for the block
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from backburner import codec
from backburner.app import Backburner
from backburner.backends.memory import MemoryBackend
from backburner.errors import ConfigurationError
from backburner.job import JobRecord, JobState
from backburner.task import Task

__all__ = [
    "JobsHarness", "ManualClock", "MemoryBackend", "drain", "memory_backend", "memory_store",
]


class ManualClock:
    """A clock that only moves when told to. Starts at the real time."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.now += seconds


def memory_backend(clock: ManualClock | None = None) -> MemoryBackend:
    return MemoryBackend(clock=clock or time.time)


async def drain(
    app: Backburner, *, concurrency: int = 10, run_scheduled: bool = False, max_rounds: int = 1000
) -> int:
    """Run a burst worker until no job is ready; return how many attempts ran.

    A burst worker, on every store, runs what is due: jobs ready now, and retries or
    delayed jobs that fall due while it still runs others. A job scheduled for later (a
    retry's backoff, `delay=`) stays `scheduled` when it returns.

    With `run_scheduled=True` (memory store on a `ManualClock` only) the clock is moved to
    each scheduled job's time in turn, so delayed jobs and retries run too, without sleeping.
    """
    processed = 0
    for _ in range(max_rounds):
        worker = app.worker(concurrency=concurrency, burst=True, handle_signals=False)
        await worker.run()
        processed += worker.processed
        if not run_scheduled:
            return processed
        backend = app.backend
        clock = getattr(backend, "clock", None)
        if not isinstance(backend, MemoryBackend) or not isinstance(clock, ManualClock):
            raise ConfigurationError(
                "run_scheduled=True moves a ManualClock, and this app's store is "
                f"{app.url} on the real clock: use Backburner(backend=memory_backend("
                "ManualClock())), memory_store(app) or the pytest fixture `backburner`"
            )
        earliest = backend.next_run_at()
        if earliest is None:
            return processed
        clock.advance(max(0.0, earliest - clock.now))
    raise RuntimeError(f"jobs were still scheduled after {max_rounds} rounds")


class JobsHarness:
    """An app on a fresh in-memory store for one test (`memory_store`, the pytest fixture
    `backburner`): run its jobs and assert on what was enqueued."""

    def __init__(self, app: Backburner, backend: MemoryBackend, clock: ManualClock) -> None:
        self.app = app
        self.backend = backend
        self.clock = clock

    async def drain(self, *, run_scheduled: bool = True, concurrency: int = 10) -> int:
        """Run every job, retries and delayed jobs included (the clock is moved to each in
        turn; nothing sleeps); return how many attempts ran. `run_scheduled=False`: only
        what is due now, like a burst worker."""
        return await drain(self.app, concurrency=concurrency, run_scheduled=run_scheduled)

    def drain_sync(self, *, run_scheduled: bool = True, concurrency: int = 10) -> int:
        """`drain` for a sync test (e.g. one using FastAPI's TestClient)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.drain(run_scheduled=run_scheduled, concurrency=concurrency))
        raise RuntimeError("drain_sync() is for sync tests: in an async test, await drain()")

    def jobs(
        self, task: Task[Any, Any] | str | None = None, *, state: JobState | str | None = None
    ) -> list[JobRecord]:
        """The store's jobs, oldest first: all, or those of one task and/or state."""
        name = task.name if isinstance(task, Task) else task
        wanted = None if state is None else JobState(state)
        return [
            r for r in self.backend.snapshot()
            if (name is None or r.task == name) and (wanted is None or r.state is wanted)
        ]

    def assert_enqueued(self, task: Task[Any, Any], /, *args: Any, **kwargs: Any) -> JobRecord:
        """The latest job of `task` enqueued with these arguments (as the task stores them:
        `send("a", n=1)` and `send(n=1, x="a")` are the same call); without arguments, the
        latest job of `task`. Fails listing every job in the store."""
        found = self._matching(task, args, kwargs)
        if not found:
            call = _call_text(task.name, list(args), kwargs) if args or kwargs else task.name
            raise AssertionError(f"no job of {call} was enqueued; {self._listing()}")
        return found[-1]

    def assert_not_enqueued(self, task: Task[Any, Any], /, *args: Any, **kwargs: Any) -> None:
        """No job of `task` (with these arguments, when given) is in the store."""
        found = self._matching(task, args, kwargs)
        if found:
            shown = "\n".join(f"  {_job_text(r)}" for r in found)
            raise AssertionError(f"expected no job of {task.name}, found {len(found)}:\n{shown}")

    def _matching(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[JobRecord]:
        if not isinstance(task, Task):
            raise TypeError(f"assert_enqueued takes the task object, got {task!r}")
        jobs = self.jobs(task)
        if not args and not kwargs:
            return jobs
        want = _plain(task.signature.encode(args, kwargs))
        return [r for r in jobs if _plain((r.args, r.kwargs)) == want]

    def _listing(self) -> str:
        jobs = self.backend.snapshot()
        if not jobs:
            return "the store holds no job"
        lines = "\n".join(f"  {_job_text(r)}" for r in jobs)
        return f"the store holds {len(jobs)}:\n{lines}"


def _plain(value: Any) -> Any:
    # Compare as stored: tuples and lists alike, keys in any order.
    return codec.loads(codec.dumps(value))


def _call_text(name: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _job_text(record: JobRecord) -> str:
    return f"{_call_text(record.task, record.args, record.kwargs)} {record.state.value}"


@contextlib.contextmanager
def memory_store(app: Backburner, clock: ManualClock | None = None) -> Iterator[JobsHarness]:
    """Run `app` (typically your module-level app, made with a real URL) on a fresh
    in-memory store inside the block, on `clock` (a new `ManualClock` by default), and on
    its own store again after it. Nothing is global: other apps are untouched."""
    clock = clock if clock is not None else ManualClock()
    backend = memory_backend(clock)
    with app.using_backend(backend):
        yield JobsHarness(app, backend, clock)
