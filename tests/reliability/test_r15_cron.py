"""R15 at CI size: 3 worker processes, each running the scheduler of a 1 s schedule, are
killed (SIGKILL) at random for ~30 s, one at a time and replaced at once, so at least one
always lives. Every tick from the first to the last is enqueued, each exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from conftest import ALL_KINDS
from services import backend_url

from backburner.backends import open_backend
from backburner.backends.protocol import JobFilter

pytestmark = pytest.mark.reliability

HERE = Path(__file__).parent
PROCESSES = 3
DURATION = 30.0


async def stored_keys(url: str, destroy: bool) -> list[str | None]:
    backend = open_backend(url)
    await backend.open()
    try:
        keys: list[str | None] = []
        cursor = None
        while True:
            page = await backend.list_jobs(JobFilter(task="r15.tick"), 1000, cursor)
            keys += [r.unique_key for r in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                return keys
    finally:
        if destroy and hasattr(backend, "destroy"):
            await backend.destroy()
        await backend.close()


def start(url: str, logs: Path, n: int) -> subprocess.Popen[bytes]:
    with (logs / f"worker-{n}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "backburner", "--log-level", "WARNING", "worker",
             "r15_app:app", "--concurrency", "4"],
            cwd=HERE, env={**os.environ, "R15_URL": url}, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_each_tick_once_while_one_scheduler_lives(
    kind: str, tmp_path: Path, rng: random.Random
) -> None:
    url = backend_url(kind, tmp_path)
    asyncio.run(stored_keys(url, destroy=False))  # create the schema before the workers
    procs = [start(url, tmp_path, n) for n in range(PROCESSES)]
    kills = 0
    try:
        deadline = time.monotonic() + DURATION
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(1.0, 4.0))
            victim = rng.randrange(PROCESSES)
            assert procs[victim].poll() is None, (tmp_path / "worker-0.log").read_text()
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            kills += 1
            # Replaced at once: the other two live while the new one starts.
            procs[victim] = start(url, tmp_path, PROCESSES + kills)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
    keys = asyncio.run(stored_keys(url, destroy=True))
    counts = Counter(keys)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    ticks = sorted(datetime.fromisoformat(str(k).split("@", 1)[1]).timestamp() for k in keys)
    missing = sorted(set(range(int(ticks[0]), int(ticks[-1]) + 1)) - {int(t) for t in ticks})
    assert missing == [], f"ticks never enqueued: {missing}"
    assert len(ticks) >= DURATION / 2  # the first tick waits for the first worker to start
    print(f"FIGURES R15 {kind}: processes={PROCESSES} kills={kills} ticks={len(ticks)} "
          f"doubled=0 missed=0")
