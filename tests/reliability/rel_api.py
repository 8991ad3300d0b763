"""The "API process" of R11: enqueues concurrently into the shared SQLite file, as a web app
would, while a dashboard-like reader polls. Run as `python rel_api.py JOBS OUT ERRORS`.

Every id is appended to OUT as soon as its `enqueue` returned (acknowledged); every
exception a client would have seen is written to ERRORS."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import traceback
from pathlib import Path
from typing import TextIO

from rel_app import build_app
from rel_harness import DB_ENV

from backburner import Backburner

CLIENTS = 8
BATCH = 25  # every 5th call of a client is an enqueue_many of up to this size


class Api:
    def __init__(self, app: Backburner, acks: TextIO, seed: int) -> None:
        self.app = app
        self.acks = acks
        self.rng = random.Random(seed)
        self.acknowledged: list[str] = []
        self.failures: list[str] = []
        self.done = asyncio.Event()

    def ack(self, ids: list[str]) -> None:
        self.acknowledged.extend(ids)
        self.acks.write("".join(f"{job_id}\n" for job_id in ids))

    async def client(self, index: int, share: int) -> None:
        task = self.app.get_task("rel.work")
        made = call = 0
        while made < share:
            call += 1
            try:
                if call % 5 == 0:
                    count = min(BATCH, share - made)
                    jobs = await task.enqueue_many(
                        [(self.rng.randint(0, 20),) for _ in range(count)]
                    )
                    self.ack([j.id for j in jobs])
                    made += count
                else:
                    self.ack([(await task.enqueue(self.rng.randint(0, 20))).id])
                    made += 1
            except Exception:
                self.failures.append(f"client {index} call {call}: {traceback.format_exc()}")
                made += 1  # a broken store must not make the client spin forever
            if call % 3 == 0:
                await asyncio.sleep(self.rng.uniform(0, 0.01))

    async def dashboard(self) -> None:
        while not self.done.is_set():
            try:
                await self.app.list_jobs(limit=50)
                await self.app.list_jobs(states=["running"], limit=20)
                if self.acknowledged:
                    await self.app.get_job(self.rng.choice(self.acknowledged))
            except Exception:
                self.failures.append(f"dashboard: {traceback.format_exc()}")
            await asyncio.sleep(0.02)


async def main(total: int, out: Path, errors: Path) -> None:
    with out.open("a", buffering=1) as acks:
        async with build_app(os.environ[DB_ENV]) as app:
            api = Api(app, acks, total)
            reader = asyncio.create_task(api.dashboard())
            share, extra = divmod(total, CLIENTS)
            await asyncio.gather(
                *(api.client(i, share + (1 if i < extra else 0)) for i in range(CLIENTS))
            )
            api.done.set()
            await reader
    errors.write_text("\n".join(api.failures))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
