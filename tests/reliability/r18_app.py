"""The app of R18's workers: `rel_app`'s tasks plus one whose progress messages are near the
2,000-character cap, so every update is ~2 KB on the wire: 50 subscribers carry real
volume, and a subscriber that reads nothing falls behind by tens of KB (measured ~72 KB
queued on the web process's socket to it; Linux lets a send buffer grow to 4 MB, so the
web process's writes to it are still taken by the kernel, not held up in the process)."""

from __future__ import annotations

import asyncio
import os
import time

from rel_app import Result
from rel_app import build_app as build_rel_app
from rel_harness import DB_ENV, attempt_result, attempt_scope, record

from backburner import Backburner, JobContext

PADDING = "x" * 1900
"""A progress message is cut at 2,000 characters: the tag goes first."""


def build_app(url: str) -> Backburner:
    app = build_rel_app(url)

    @app.task(name="r18.steps", retries=0)
    async def steps(count: int, pause: float, ctx: JobContext) -> Result:
        """Progress tagged "pid:attempt:" plus padding before each of `count` pauses."""
        with attempt_scope(ctx):
            for step in range(1, count + 1):
                issued = time.monotonic()
                stored = await ctx.progress(step, count,
                                            message=f"{os.getpid()}:{ctx.attempt}:{PADDING}")
                record("write", ctx.job_id, ctx.attempt, issued=issued, ok=stored)
                await asyncio.sleep(pause)
        return attempt_result(ctx)

    return app


_url = os.environ.get(DB_ENV)
app = build_app(_url) if _url else None
