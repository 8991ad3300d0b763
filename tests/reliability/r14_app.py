"""The app of the R14 worker processes: the tasks of `rel_app`, a task that holds its slot
until the test lets it go, and a periodic task on a 1 s schedule in a queue of its own (the
workers serve `default` only, so the ticks are stored and counted, never run). The store's
URL comes from RELIABILITY_DB, read at import (workers load `r14_app:app`)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import rel_app
from rel_harness import DB_ENV, attempt_result, attempt_scope, write_progress

from backburner import Backburner, JobContext

TICK_TASK = "r14.tick"
TICK_QUEUE = "r14-ticks"


def build_app(url: str) -> Backburner:
    app = rel_app.build_app(url)

    @app.task(name="r14.hold", retries=0)
    async def hold(marker: str, progress: bool, ctx: JobContext) -> dict[str, int]:
        """Runs until the file `marker` exists (the test decides when it ends), writing
        progress (fenced by the attempt) every 0.25 s if `progress`."""
        with attempt_scope(ctx):
            step = 0
            while not os.path.exists(marker):
                if progress:
                    step += 1
                    await write_progress(ctx, step, step)
                await asyncio.sleep(0.25 if progress else 0.05)
        return attempt_result(ctx)

    @app.periodic(every=timedelta(seconds=1))
    @app.task(name=TICK_TASK, queue=TICK_QUEUE, retries=0)
    async def tick() -> None:
        return None

    return app


_url = os.environ.get(DB_ENV)
app = build_app(_url) if _url else None
