"""One app from every event loop: a second `asyncio.run`, a thread with its own loop, a
loop per test, and across fork. Each loop gets its own connections and they close with
it; warnings are errors here, so an unclosed socket or transport fails the test."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import threading
from collections.abc import Iterator

import pytest
from services import BACKENDS, backend_url, destroy_store

from backburner import Backburner
from backburner.loops import LoopStores


def make_app(store_url: str) -> Backburner:
    app = Backburner(store_url, poll_interval=0.2)

    @app.task(name="double")
    async def double(n: int) -> int:
        return 2 * n

    return app


def shared_app(store_url: str) -> Backburner:
    # memory:// lives in the process: an app made from its URL is already "the store", so
    # the test keeps one object; every other store is reached again by URL.
    return make_app(store_url)


def test_two_asyncio_runs_each_get_their_own_connections(store_url: str) -> None:
    app = shared_app(store_url)
    double = app.get_task("double")
    first = asyncio.run(double.enqueue(1))
    second = asyncio.run(double.enqueue(2))  # failed with "Event loop is closed" before
    asyncio.run(app.run_worker(burst=True))

    async def results() -> list[int]:
        return [await app.job(first.id).result(timeout=10),
                await app.job(second.id).result(timeout=10)]

    assert asyncio.run(results()) == [2, 4]
    gc.collect()  # an unclosed transport of an ended loop would warn (an error here)
    stores: LoopStores = app._stores
    assert not stores._kept, "every loop's store closed with its loop"


def test_a_thread_with_its_own_loop_beside_the_main_one(store_url: str) -> None:
    app = shared_app(store_url)
    double = app.get_task("double")
    ids: list[str] = []
    failures: list[BaseException] = []

    def in_thread() -> None:
        async def go() -> None:
            for n in range(5):
                ids.append((await double.enqueue(n)).id)

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported below
            failures.append(exc)

    async def main() -> list[int]:
        await double.enqueue(100)  # the main loop opens first
        thread = threading.Thread(target=in_thread)
        thread.start()
        await asyncio.to_thread(thread.join)
        await app.run_worker(burst=True)
        return [await app.job(i).result(timeout=10) for i in ids]

    assert asyncio.run(main()) == [0, 2, 4, 6, 8]
    assert not failures


@pytest.fixture(scope="module", params=BACKENDS)
def module_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backburner]:
    """One app for several tests, each on its own loop (pytest-asyncio's default)."""
    made = backend_url(request.param, tmp_path_factory.mktemp("loop-per-test"))
    yield make_app(made)
    if not made.startswith("memory"):
        destroy_store(made)


@pytest.mark.parametrize("n", [1, 2, 3])
async def test_one_app_in_a_loop_per_test(module_app: Backburner, n: int) -> None:
    job = await module_app.get_task("double").enqueue(n)
    await module_app.run_worker(burst=True)
    assert await job.result(timeout=10) == 2 * n


def _child(store_url: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    app = _FORKED_APP
    assert app is not None
    double = app.get_task("double")
    got = [double.enqueue_sync(10).id, asyncio.run(double.enqueue(11)).id]
    app.close_sync()
    out.put(got)


_FORKED_APP: Backburner | None = None


async def test_a_forked_child_never_uses_its_parents_connections(store_url: str) -> None:
    global _FORKED_APP
    app = shared_app(store_url)
    _FORKED_APP = app
    double = app.get_task("double")
    try:
        before = await double.enqueue(1)  # the parent now holds connections
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_child, args=(store_url, out))
        child.start()
        child_ids = await asyncio.to_thread(out.get, True, 60)
        await asyncio.to_thread(child.join, 60)
        assert child.exitcode == 0
        # The parent's connections were not ended by the child.
        after = await double.enqueue(2)
        await app.run_worker(burst=True)
        assert await before.result(timeout=10) == 2
        assert await after.result(timeout=10) == 4
        if not store_url.startswith("memory"):  # the child's memory store was its own copy
            assert [await app.job(i).result(timeout=10) for i in child_ids] == [20, 22]
    finally:
        _FORKED_APP = None
        await app.close()
