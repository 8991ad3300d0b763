"""A forked child never uses the PostgreSQL connections of its parent: it opens its own,
and the parent's sessions survive the child."""

from __future__ import annotations

import asyncio
import multiprocessing

from backburner import Backburner

from .pg_helpers import opened, schema_url


def _child_enqueues(app: Backburner, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def go() -> str:
        job = await app.get_task("forked").enqueue(2)
        return job.id

    out.put(asyncio.run(go()))


async def test_connections_are_not_carried_across_fork() -> None:
    url, _ = schema_url()
    async with opened(url) as backend:
        app = Backburner(backend=backend)

        @app.task(name="forked")
        async def forked(n: int) -> int:
            return n

        first = await forked.enqueue(1)  # the parent now holds a pool
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_child_enqueues, args=(app, out))
        child.start()
        child_job = await asyncio.to_thread(out.get, True, 30)
        await asyncio.to_thread(child.join, 30)
        assert child.exitcode == 0
        # The parent's pooled sessions were not ended by the child.
        await app.run_worker(burst=True)
        assert await first.result(timeout=5) == 1
        assert await app.job(child_job).result(timeout=5) == 2
