"""`rel_app` plus tasks that raise `SystemExit` (async and sync), for the worker defects
test (test_task_exit.py). Workers load `rd_app:app`; the test builds its own app with
`build_app(url)` to enqueue and inspect."""

from __future__ import annotations

import os

from rel_app import build_app as build_rel_app
from rel_harness import DB_ENV, attempt_scope

from backburner import Backburner, Backoff, JobContext

QUIT_RETRIES = 1


def build_app(url: str) -> Backburner:
    app = build_rel_app(url)

    @app.task(name="rd.quit", retries=QUIT_RETRIES, backoff=Backoff(0.1, jitter=0))
    async def quit_async(code: int, ctx: JobContext) -> None:
        """Raises SystemExit(code), as a task calling sys.exit() would, every attempt."""
        with attempt_scope(ctx):
            raise SystemExit(code)

    @app.task(name="rd.quit_sync", retries=QUIT_RETRIES, backoff=Backoff(0.1, jitter=0))
    def quit_sync(code: int, ctx: JobContext) -> None:
        """`quit` as a sync task: SystemExit raised in a worker thread."""
        with attempt_scope(ctx):
            raise SystemExit(code)

    return app


_url = os.environ.get(DB_ENV)
app = build_app(_url) if _url else None
