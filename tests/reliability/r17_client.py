"""One R17 client process: `python r17_client.py URL KEYS CLIENTS BATCH SEED GO OUT`.

Runs CLIENTS asyncio tasks on one app (one set of connections) on URL, each enqueueing
every one of KEYS unique keys (derived from the arguments) in its own random order, BATCH
keys per enqueue_many, all starting together once the file GO exists; writes
[[key, id, duplicate]...] per client to OUT."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from pathlib import Path

from backburner import Backburner


def make_app(url: str) -> Backburner:
    app = Backburner(url)

    @app.task(name="r17.charge")
    async def charge(order: int) -> None: ...

    return app


async def client(
    app: Backburner, keys: int, batch: int, rng: random.Random, start: asyncio.Event
) -> list[tuple[int, str, bool]]:
    task = app.get_task("r17.charge")
    order = list(range(keys))
    rng.shuffle(order)
    await start.wait()
    seen = []
    for i in range(0, keys, batch):
        chunk = order[i : i + batch]
        handles = await task.options(unique=True).enqueue_many([(n,) for n in chunk])
        seen += [(n, h.id, h.duplicate) for n, h in zip(chunk, handles, strict=True)]
    return seen


async def main(
    url: str, keys: int, clients: int, batch: int, seed: int, go: str, out: str
) -> None:
    app = make_app(url)
    await app.open()
    try:
        start = asyncio.Event()
        runs = [
            asyncio.create_task(client(app, keys, batch, random.Random(seed * 1000 + c), start))
            for c in range(clients)
        ]
        # Every process connects first, then all clients go at once (see test_r17_unique).
        while not os.path.exists(go):
            await asyncio.sleep(0.01)
        start.set()
        results = await asyncio.gather(*runs)
    finally:
        await app.close()
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    url, keys, clients, batch, seed, go, out = sys.argv[1:]
    asyncio.run(main(url, int(keys), int(clients), int(batch), int(seed), go, out))
