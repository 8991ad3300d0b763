"""R12's forking process: `python r12_fork.py DB CHILDREN JOBS`.

Opens the store and enqueues (so it holds connections and the SQLite thread), then forks
CHILDREN processes while its own event loop runs, as a pre-forking server would. Every child
and the parent enqueue JOBS jobs at the same time; the children exit; the parent goes on
with the connections it had (a child that closed or used them would break them), runs a
burst worker over everything and prints one JSON line: the ids each process enqueued, the
children's exit codes and the file's integrity check."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback

from backburner import Backburner


def build(url: str) -> Backburner:
    app = Backburner(url, poll_interval=0.5)

    @app.task(name="r12.echo")
    async def echo(n: int) -> int:
        return n

    return app


async def enqueue(app: Backburner, count: int) -> list[str]:
    task = app.get_task("r12.echo")
    ids = []
    for n in range(count):
        ids.append((await task.enqueue(n)).id)
        if n % 10 == 0:
            await app.list_jobs(limit=20)  # a reader among the writes
    return ids


def child(app: Backburner, count: int, out: str) -> None:
    """Runs in the forked child: the parent's app object, inherited, used from scratch."""
    code = 0
    try:
        ids = asyncio.run(enqueue(app, count))
        with open(out, "w") as f:
            json.dump(ids, f)
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


async def main(url: str, children: int, count: int, workdir: str) -> None:
    async with build(url) as app:
        first = await enqueue(app, 1)
        pids = []
        for index in range(children):
            pid = os.fork()
            if pid == 0:
                child(app, count, os.path.join(workdir, f"child-{index}.json"))
            pids.append(pid)
        mine = first + await enqueue(app, count)
        codes = []
        for pid in pids:
            _, status = await asyncio.to_thread(os.waitpid, pid, 0)
            codes.append(os.waitstatus_to_exitcode(status))
        mine += await enqueue(app, count)  # after the children are gone
        await app.run_worker(burst=True, concurrency=16)
        theirs = []
        for index in range(children):
            path = os.path.join(workdir, f"child-{index}.json")
            if os.path.exists(path):
                theirs.extend(json.loads(await asyncio.to_thread(_read, path)))
        ids = mine + theirs
        done = 0
        for job_id in ids:
            record = await app.get_job(job_id)
            done += record is not None and record.state.value == "completed"
        integrity = await app.backend.integrity_check()  # type: ignore[attr-defined]
    print(json.dumps({"codes": codes, "parent": len(mine), "children": len(theirs),
                      "unique": len(set(ids)), "completed": done, "integrity": integrity}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
