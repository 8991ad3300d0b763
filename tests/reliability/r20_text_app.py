"""The app of the R20 text workers: `rel_app`'s tasks plus two whose text holds NUL (an
exception message, a result and a progress message). Workers load `r20_text_app:app`."""

from __future__ import annotations

import os

from rel_app import build_app
from rel_harness import DB_ENV

from backburner import Backburner, Backoff, JobContext

NUL_TEXT = "before\x00after"


def build(url: str) -> Backburner:
    app = build_app(url)

    @app.task(name="r20.nul_error", retries=1, backoff=Backoff(0.1, jitter=0))
    async def nul_error() -> None:
        raise ValueError(NUL_TEXT)

    @app.task(name="r20.nul_result", retries=0)
    async def nul_result(text: str, ctx: JobContext) -> str:
        await ctx.progress(1, 1, message=text)
        return text

    return app


app = build(os.environ.get(DB_ENV, "memory://"))
