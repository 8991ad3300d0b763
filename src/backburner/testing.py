"""Helpers for testing code that uses Backburner, on the in-memory backend.

    from backburner import Backburner
    from backburner.testing import ManualClock, drain, memory_backend

    clock = ManualClock()
    app = Backburner(backend=memory_backend(clock))
    ...                                   # register tasks, call your code that enqueues
    await drain(app, run_scheduled=True)  # runs everything, retries and delays included,
                                          # by moving the clock instead of sleeping
"""

from __future__ import annotations

import time

from backburner.app import Backburner
from backburner.backends.memory import MemoryBackend
from backburner.errors import ConfigurationError

__all__ = ["ManualClock", "MemoryBackend", "drain", "memory_backend"]


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

    With `run_scheduled=True` (memory backend with a `ManualClock` only) the clock is moved to
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
            raise ConfigurationError("run_scheduled needs a memory backend with a ManualClock")
        earliest = backend.next_run_at()
        if earliest is None:
            return processed
        clock.advance(max(0.0, earliest - clock.now))
    raise RuntimeError(f"jobs were still scheduled after {max_rounds} rounds")
