"""What a process built at startup, kept out of the cyclic garbage collector's full passes.

Why: a web process whose requests await a store keeps each request's objects alive across the
await. The collector sees them survive, promotes them, and so runs a full collection every few
hundred requests; a full collection walks every object the process holds: the modules, the
app, its routes, pydantic's schemas, some 80,000 objects in a small FastAPI app. On the web
benchmark (bench/web.py, Redis, `await task.enqueue()`) those full passes took three quarters
of the collector's time and about 50 µs per request, more than the enqueue itself.

`gc.freeze()` once startup is done moves what exists to a permanent generation that no
collection walks; collections then only see what requests and jobs create. `gc.unfreeze()` at
shutdown hands it back, so an app that is gone is collected as usual (a test suite starts
hundreds). Objects frozen are never lost, only left alone until then. The collector is one per
process: when two apps in one process overlap, the first to stop unfreezes both (slower,
nothing else)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def startup_objects_frozen(enabled: bool = True) -> Iterator[None]:
    """Freeze the objects alive now for the duration of the block (nothing when disabled)."""
    if not enabled:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
