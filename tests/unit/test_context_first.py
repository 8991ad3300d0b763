"""A task whose first parameter is its JobContext (the shape that type-checks without the
mypy plugin) runs as any other: the worker passes the context, callers never do, and
`pipe` fills the first parameter after it."""

from __future__ import annotations

import pytest

from backburner import Backburner, InvalidArgumentsError, JobContext
from backburner.testing import memory_store


async def test_a_context_first_task_is_enqueued_piped_and_run() -> None:
    app = Backburner("memory://")

    @app.task
    async def resize(ctx: JobContext, path: str, width: int = 100) -> str:
        return f"{path}@{width} attempt {ctx.attempt}"

    @app.task
    def shout(ctx: JobContext, text: str, suffix: str) -> str:
        return f"{text.upper()}{suffix} ({ctx.task})"

    with memory_store(app) as jobs:
        job = await resize.enqueue("a.png", width=3)
        flow = await app.chain(resize.call("b.png"), shout.pipe(suffix="!"))
        with pytest.raises(InvalidArgumentsError):
            await resize.enqueue("a.png", 3, 4)  # type: ignore[call-arg]
        await jobs.drain()
        assert await job.result(timeout=5) == "a.png@3 attempt 1"
        jobs.assert_enqueued(shout)
        assert await flow.result(timeout=5) == f"B.PNG@100 ATTEMPT 1! ({shout.name})"
