"""The tasks run by the worker processes of the reliability tests.

Workers load `rel_app:app`; the database comes from RELIABILITY_DB, read at import. The test
process builds its own app with `build_app(url)` (same task names) to enqueue and inspect.
Every task records its attempts in the history (see `rel_harness`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from rel_harness import DB_ENV, attempt_result, attempt_scope, record, write_progress

from backburner import Backburner, Backoff, JobContext, RetryLater

Result = dict[str, int]

FLAKY_BACKOFF = Backoff(base=0.5, factor=2.0, jitter=0.3)
SLOW_BACKOFF = Backoff(base=4.0, factor=2.0, jitter=0.1)
HANG_TIMEOUT = 1.0
block_the_loop = time.sleep  # called from async code on purpose (rel.block)


def build_app(url: str) -> Backburner:
    app = Backburner(url, poll_interval=0.5)

    @app.task(name="rel.work", retries=0)
    async def work(ms: int, ctx: JobContext) -> Result:
        """A plain job of `ms` milliseconds."""
        with attempt_scope(ctx):
            await asyncio.sleep(ms / 1000)
        return attempt_result(ctx)

    @app.task(name="rel.steps", retries=0)
    async def steps(count: int, pause: float, ctx: JobContext) -> Result:
        """Reports progress (tagged pid:attempt) before each of `count` pauses."""
        with attempt_scope(ctx):
            for step in range(1, count + 1):
                await write_progress(ctx, step, count)
                await asyncio.sleep(pause)
        return attempt_result(ctx)

    @app.task(name="rel.nap", retries=0)
    async def nap(first: float, later: float, ctx: JobContext) -> Result:
        """Sleeps `first` seconds on attempt 1, `later` seconds on any other attempt."""
        with attempt_scope(ctx):
            await asyncio.sleep(first if ctx.attempt == 1 else later)
        return attempt_result(ctx)

    @app.task(name="rel.block", retries=3, backoff=Backoff(0.1, jitter=0))
    async def block(first: float, later: float, fail_first: bool, ctx: JobContext) -> Result:
        """Blocks the worker's event loop (on purpose) for `first` seconds on attempt 1,
        `later` seconds on any other: nothing else in that worker runs meanwhile. With
        `fail_first`, attempt 1 then raises (a retryable failure) instead of returning."""
        with attempt_scope(ctx):
            block_the_loop(first if ctx.attempt == 1 else later)
            if fail_first and ctx.attempt == 1:
                raise ValueError("attempt 1 fails after blocking")
        return attempt_result(ctx)

    @app.task(name="rel.nap_sync", retries=0)
    def nap_sync(first: float, later: float, ctx: JobContext) -> Result:
        """`nap` as a sync task: a blocking sleep in a worker thread."""
        with attempt_scope(ctx):
            time.sleep(first if ctx.attempt == 1 else later)
        return attempt_result(ctx)

    @app.task(name="rel.poison", retries=5)
    async def poison(mode: str, ctx: JobContext) -> None:
        """Takes its worker process down with it, every time."""
        record("start", ctx.job_id, ctx.attempt)
        if mode == "exit":
            os._exit(3)
        elif mode == "abort":
            os.abort()
        elif mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise ValueError(f"unknown poison mode {mode!r}")

    @app.task(name="rel.hang", retries=1, timeout=HANG_TIMEOUT, backoff=Backoff(0.2, jitter=0))
    async def hang(ctx: JobContext) -> None:
        """Never returns."""
        with attempt_scope(ctx):
            await asyncio.sleep(3600)

    @app.task(
        name="rel.hang_sync", retries=1, timeout=HANG_TIMEOUT, backoff=Backoff(0.2, jitter=0)
    )
    def hang_sync(seconds: float, ctx: JobContext) -> None:
        """Blocks its thread far past the timeout, ignoring `ctx.cancelled`."""
        with attempt_scope(ctx):
            time.sleep(seconds)

    @app.task(name="rel.stubborn", retries=1, timeout=HANG_TIMEOUT, backoff=Backoff(0.2, jitter=0))
    async def stubborn(cleanup: float, ctx: JobContext) -> None:
        """Hangs, and when cancelled takes `cleanup` seconds before it gives in (a slow
        `finally`, or code that swallows one CancelledError)."""
        with attempt_scope(ctx):
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(cleanup)

    @app.task(name="rel.flaky", retries=3, backoff=FLAKY_BACKOFF)
    async def flaky(fail_until: int, ctx: JobContext) -> Result:
        """Raises on attempts 1..fail_until."""
        with attempt_scope(ctx):
            if ctx.attempt <= fail_until:
                raise ValueError(f"attempt {ctx.attempt} of {ctx.job_id} failed on purpose")
        return attempt_result(ctx)

    @app.task(name="rel.flaky_slow", retries=2, backoff=SLOW_BACKOFF)
    async def flaky_slow(fail_until: int, ctx: JobContext) -> Result:
        """`flaky` with a backoff long enough to kill workers during it."""
        with attempt_scope(ctx):
            if ctx.attempt <= fail_until:
                raise ValueError(f"attempt {ctx.attempt} of {ctx.job_id} failed on purpose")
        return attempt_result(ctx)

    @app.task(name="rel.later", retries=2)
    async def later(delay: float, ctx: JobContext) -> Result:
        """Asks for one retry `delay` seconds later, then succeeds."""
        with attempt_scope(ctx):
            if ctx.attempt == 1:
                raise RetryLater(delay=delay, reason="not yet")
        return attempt_result(ctx)

    @app.task(name="rel.noop", retries=0)
    async def noop(x: int) -> int:
        return x

    @app.task(name="rel.flow_step", retries=0)
    async def flow_step(trail: list[str], name: str, first: float, ctx: JobContext) -> list[str]:
        """A chain step (`pipe`): the trail the previous step returned plus its own name;
        sleeps `first` seconds on attempt 1 (time to kill its worker), briefly after."""
        with attempt_scope(ctx):
            await asyncio.sleep(first if ctx.attempt == 1 else 0.05)
        return [*trail, name]

    @app.task(name="rel.flow_member", retries=0)
    async def flow_member(x: int, first: float, ctx: JobContext) -> int:
        """A group member: `x`, after `first` seconds on attempt 1 (briefly after)."""
        with attempt_scope(ctx):
            await asyncio.sleep(first if ctx.attempt == 1 else 0.05)
        return x

    @app.task(name="rel.flow_gather", retries=0)
    async def flow_gather(results: list[int], ctx: JobContext) -> list[int]:
        """A group's callback (`pipe`): the members' results, as received."""
        with attempt_scope(ctx):
            pass
        return results

    return app


_url = os.environ.get(DB_ENV)
app = build_app(_url) if _url else None
