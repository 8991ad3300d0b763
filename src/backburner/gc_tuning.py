"""The cyclic garbage collector, set for a process that serves requests or runs jobs.

Why: a web process whose requests await the store keeps each request's objects alive across
the await, and a worker keeps its jobs' objects alive while they run. The collector counts
allocations, finds those objects still alive when it looks, promotes them, and so runs:
- a young collection every 700 allocations (CPython's default threshold before 3.13), each
  walking everything the requests in flight hold;
- a full collection every hundred or so of those, walking every object of the process: the
  modules, the app, its routes, pydantic's schemas (some 80,000 objects in a small app).

Measured on the web benchmark (uvicorn, `await task.enqueue()` on Redis, 64 connections):
the collector took ~55 µs of CPU per request, three quarters of it in full collections, where
a request costs ~125 µs with in-memory BackgroundTasks. While the block below runs:
- what exists once startup is done is frozen (`gc.freeze()`): no collection walks it again;
- the young threshold is at least 7,000 allocations (net of frees), which requests that
  free what they allocated once answered seldom reach.
Then the collector ran 2 young collections in 30,000 requests instead of 3,800 collections,
and the uvicorn process went from ~190 to ~130 µs of CPU a request (bench/FINDINGS.md).

Nothing is lost by either: cyclic garbage is still collected, a little later; what was frozen
is handed back at the end (`gc.unfreeze()`) and the thresholds are restored, so an app that is
gone is collected as usual (a test suite starts hundreds). A process that disabled the
collector or set a larger threshold is left as it is. The collector is one per process: when
two apps in one process overlap, the first to stop restores it for both (slower, nothing
else)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 7_000
"""Allocations between young collections while serving (CPython: 700 before 3.13, 2,000
since)."""


@contextlib.contextmanager
def collector_tuned(enabled: bool = True) -> Iterator[None]:
    """Freeze the objects alive now and raise the young threshold for the block's duration."""
    if not enabled or not gc.isenabled():
        yield
        return
    before = gc.get_threshold()
    raised = before[0] < YOUNG_THRESHOLD
    gc.freeze()
    if raised:
        gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        # Restored only if nobody set another threshold meanwhile.
        if raised and gc.get_threshold()[0] == YOUNG_THRESHOLD:
            gc.set_threshold(*before)
        gc.unfreeze()
