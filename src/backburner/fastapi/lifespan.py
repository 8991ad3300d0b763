"""Running Backburner inside a FastAPI app: one line in `FastAPI(lifespan=...)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from backburner.app import Backburner
from backburner.startup_gc import startup_objects_frozen

log = logging.getLogger("backburner.fastapi")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def backburner_lifespan(
    app: Backburner,
    *,
    worker: bool = True,
    wrap: Lifespan | None = None,
    gc_freeze: bool = True,
    **worker_options: Any,
) -> Lifespan:
    """`FastAPI(lifespan=backburner_lifespan(jobs))`: opens the store, runs an embedded
    worker (unless `worker=False`, when separate `backburner worker` processes do the work)
    and shuts it down cleanly: running jobs get the worker's grace period, then are
    released. `wrap` is the app's own lifespan, entered inside ours; its state is passed on.

    `gc_freeze`: once everything has started (yours included), the objects that exist are
    frozen out of the garbage collector's full passes until shutdown (`gc.freeze()`), which
    otherwise walk the whole app every few hundred requests that await something; on the
    web benchmark that took ~50 µs a request (backburner.startup_gc says more). False
    leaves the collector alone.
    """

    @asynccontextmanager
    async def lifespan(fastapi_app: FastAPI) -> AsyncIterator[Any]:
        fastapi_app.state.backburner = app
        await app.open()
        running: asyncio.Task[None] | None = None
        embedded = None
        if worker:
            embedded = app.worker(handle_signals=False, **worker_options)
            running = asyncio.create_task(embedded.run(), name="backburner-worker")
            running.add_done_callback(_report_crash)
        try:
            if wrap is None:
                with startup_objects_frozen(gc_freeze):
                    yield None
            else:
                async with wrap(fastapi_app) as state:
                    with startup_objects_frozen(gc_freeze):
                        yield state
        finally:
            if embedded is not None and running is not None:
                embedded.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(running), embedded.grace + 15)
            await app.close()

    return lifespan


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.critical("the embedded Backburner worker stopped: %r", exc, exc_info=exc)
