"""Checked by mypy WITHOUT the backburner plugin (tests/unit/test_typing.py): a JobContext
first is left out of `enqueue`; one elsewhere is still asked for (the plugin drops it)."""

from backburner import Backburner, JobContext

app = Backburner("memory://")


@app.task
async def resize(ctx: JobContext, path: str, width: int = 100) -> str:
    return path


@app.task(retries=2)
def count(ctx: JobContext, n: int) -> int:
    return n


@app.task
async def context_last(path: str, ctx: JobContext) -> None: ...


@app.task
def plain(n: int) -> int:
    return n


@app.task
async def takes_results(results: list[int], ctx: JobContext) -> None: ...


async def use() -> None:
    job = await resize.enqueue("a.png", width=3)
    result: str = await job.result()
    await resize.enqueue("a.png")
    await resize.options(delay=5).enqueue(path="b.png")
    await count.enqueue(1)
    await count.enqueue_many([count.call(2), (3,)])
    await plain.enqueue(1)
    await app.chain(plain.call(1), count.pipe())
    await resize.enqueue(1)  # E: arg-type
    await count.enqueue()  # E: call-arg
    await count.enqueue(1, 2)  # E: call-arg
    bad: int = await job.result()  # E: assignment
    await plain.enqueue("x")  # E: arg-type
    await context_last.enqueue("a")  # E: call-arg
    print(result, bad)


def use_sync() -> None:
    resize.enqueue_sync("a.png", width=3)
    count.options(delay=5).enqueue_sync(1)
    count.enqueue_sync()  # E: call-arg
    resize.enqueue_sync(1)  # E: arg-type
