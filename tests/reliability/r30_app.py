"""The app of R30's workers: `rel_app`'s tasks plus one whose later attempts are quick.

A job rescued from a cut-off worker runs again alone (a job that lost its worker might be
what killed it), so re-runs as long as the first attempt would make the test wait for them
one after the other."""

from __future__ import annotations

import asyncio
import os

from rel_app import Result
from rel_app import build_app as build_rel_app
from rel_harness import DB_ENV, attempt_result, attempt_scope, write_progress

from backburner import Backburner, JobContext


def build_app(url: str) -> Backburner:
    app = build_rel_app(url)

    @app.task(name="r30.steps", retries=0)
    async def steps(count: int, pause: float, ctx: JobContext) -> Result:
        """Progress (tagged pid:attempt) before each of `count` pauses on attempt 1; two
        short steps on any later attempt."""
        if ctx.attempt > 1:
            count, pause = 2, 0.05
        with attempt_scope(ctx):
            for step in range(1, count + 1):
                await write_progress(ctx, step, count)
                await asyncio.sleep(pause)
        return attempt_result(ctx)

    return app


_url = os.environ.get(DB_ENV)
app = build_app(_url) if _url else None
