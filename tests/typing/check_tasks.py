"""Checked by mypy in CI (see tests/test_typing.py): lines marked `# E:` must be errors."""

from backburner import Backburner, JobContext

app = Backburner("memory://")


@app.task(retries=3, timeout=30)
async def resize(path: str, width: int, ctx: JobContext) -> dict[str, bool]:
    await ctx.progress(1, total=3, message="loading")
    return {"ok": True}


@app.task
def send_email(to: str) -> None: ...


@app.task
async def summarize(results: list[int], title: str, ctx: JobContext) -> str:
    return title


@app.task
async def crop(ctx: JobContext, path: str, *, box: tuple[int, int] = (0, 0)) -> str:
    return path


async def use() -> None:
    job = await resize.enqueue("a.png", width=200)
    result: dict[str, bool] = await job.result(timeout=1)
    await resize.options(delay=60, priority=5).enqueue("a.png", width=200)
    await send_email.enqueue_many([send_email.call("a@x.io"), ("b@x.io",)])
    await send_email.enqueue("a@x.io")
    await resize.enqueue("a.png", width="x")  # E: arg-type
    await send_email.enqueue(to=1)  # E: arg-type
    await send_email.enqueue()  # E: call-arg
    bad: int = await job.result()  # E: assignment
    await app.chain(send_email.call("a@x.io"), summarize.pipe(title="t"))
    await app.group([send_email.call("a@x.io")], then=summarize.pipe("t"))
    await app.chain(summarize.pipe(title=1))  # E: arg-type
    await app.chain(summarize.pipe())  # E: call-arg
    await crop.enqueue("a.png", box=(1, 2))
    await crop.options(queue="images").enqueue(path="a.png")
    await crop.enqueue(1)  # E: arg-type
    await crop.enqueue("a.png", (1, 2))  # E: call-arg|misc
    await app.chain(crop.call("a.png"), summarize.pipe(title="t"))
    print(result, bad)


def use_sync() -> None:
    job = resize.enqueue_sync("a.png", width=200)
    result: dict[str, bool] = job.result_sync(timeout=1)
    resize.options(delay=60).enqueue_sync("a.png", width=200)
    send_email.enqueue_many_sync([send_email.call("a@x.io"), ("b@x.io",)])
    crop.enqueue_sync("a.png", box=(1, 2))
    resize.enqueue_sync("a.png", width="x")  # E: arg-type
    send_email.enqueue_sync()  # E: call-arg
    crop.options(queue="images").enqueue_sync(1)  # E: arg-type
    bad: int = job.result_sync()  # E: assignment
    print(result, bad)
