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
from backburner.gc_tuning import collector_tuned

log = logging.getLogger("backburner.fastapi")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def backburner_lifespan(
    app: Backburner,
    *,
    worker: bool = True,
    wrap: Lifespan | None = None,
    gc_tuning: bool = True,
    **worker_options: Any,
) -> Lifespan:
    """`FastAPI(lifespan=backburner_lifespan(jobs))`: opens the store, runs an embedded
    worker (unless `worker=False`, when separate `backburner worker` processes do the work)
    and shuts it down cleanly: running jobs get the worker's grace period, then are
    released. `wrap` is the app's own lifespan, entered inside ours; its state is passed on.

    `gc_tuning`: once everything has started (yours included), what exists is frozen out of
    the garbage collector's passes and its young threshold is raised to 7,000 allocations,
    until shutdown. Requests that await something keep their objects alive across the
    await, and the collector then walks the whole app every few hundred requests: ~55 µs a
    request on the web benchmark, next to nothing with this (backburner.gc_tuning says
    more). False leaves the collector alone.
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
            own = wrap(fastapi_app) if wrap is not None else contextlib.nullcontext()
            async with own as state:
                with collector_tuned(gc_tuning):
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
