"""A first taste of Backburner: durable jobs in a SQLite file, run by an embedded worker.

    bash scripts/demo.sh          (or: .venv/bin/python examples/quickstart.py)

It enqueues a few jobs (one with progress, a sync one, a delayed one, one that fails and is
retried), runs a worker in this process until they are done, and prints what the store kept.
"""

from __future__ import annotations

import asyncio
import os
import sys

from backburner import Backburner, Backoff, JobContext, JobFailedError

DB = os.environ.get("BACKBURNER_URL", "sqlite:///backburner-demo.db")
app = Backburner(DB)


@app.task(retries=3, timeout=30)
async def resize(path: str, width: int, ctx: JobContext) -> dict[str, object]:
    for step, label in enumerate(("loading", "resizing", "saving"), start=1):
        await ctx.progress(step, total=3, message=label)
        await asyncio.sleep(0.2)
    return {"path": path, "width": width, "ok": True}


@app.task
def send_email(to: str) -> str:
    # Sync tasks run in a thread, never on the event loop.
    return f"sent to {to}"


@app.task(retries=2, backoff=Backoff(base=0.3, jitter=0.1))
async def flaky_webhook(url: str, ctx: JobContext) -> str:
    if ctx.attempt < 3:  # the receiver is down for the first two attempts
        raise ConnectionError(f"{url} did not answer (attempt {ctx.attempt})")
    return f"delivered on attempt {ctx.attempt}"


async def main() -> int:
    async with app:
        image = await resize.enqueue("cat.png", width=200)
        mails = await send_email.enqueue_many([("ada@example.com",), ("alan@example.com",)])
        later = await send_email.options(delay=1).enqueue("grace@example.com")
        hook = await flaky_webhook.enqueue("https://example.com/hook")
        print(f"enqueued {2 + len(mails) + 1} jobs into {app.url}")

        worker = app.worker(concurrency=10)
        running = asyncio.create_task(worker.run())
        try:
            print("resize      ->", await image.result(timeout=30))
            for mail in mails:
                print("send_email  ->", await mail.result(timeout=30))
            print("delayed     ->", await later.result(timeout=30))
            try:
                print("webhook     ->", await hook.result(timeout=30))
            except JobFailedError as exc:
                print("webhook     -> failed for good:", exc)
            record = await hook.info()
            for error in record.errors:
                print(f"  attempt {error.attempt}: {error.type}: {error.message}")
        finally:
            worker.stop()
            await running
        print("\nlast jobs in the store:")
        for job in (await app.list_jobs(limit=6)).jobs:
            print(f"  {job.id}  {job.task:<40} {job.state.value:<10} attempt {job.attempt}")
        print(f"\ninspect them: .venv/bin/backburner jobs list --url {app.url}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
