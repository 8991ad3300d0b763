"""R17 at CI size: 100 concurrent clients (4 processes x 25 asyncio tasks) enqueue the same
1,000 unique keys, each in its own random order and in batches: exactly one job per key on
every backend, and every client was handed that job's id."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import ALL_KINDS
from services import backend_url

from backburner.backends import open_backend
from backburner.backends.protocol import JobFilter

pytestmark = pytest.mark.reliability

PROCESSES = 4
CLIENTS = 25
KEYS = 1000
BATCH = 50
CLIENT = Path(__file__).with_name("r17_client.py")


async def stored_jobs(url: str) -> list[tuple[str, int]]:
    backend = open_backend(url)
    await backend.open()
    try:
        found: list[tuple[str, int]] = []
        cursor = None
        while True:
            page = await backend.list_jobs(JobFilter(task="r17.charge"), 1000, cursor)
            found += [(r.id, r.kwargs["order"]) for r in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                return found
    finally:
        destroy = getattr(backend, "destroy", None)
        if destroy is not None:
            await destroy()
        await backend.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_one_job_per_key_under_100_concurrent_clients(
    kind: str, tmp_path: Path, seed: int
) -> None:
    url = backend_url(kind, tmp_path)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(CLIENT), url, str(KEYS), str(CLIENTS), str(BATCH),
             str(seed + p), str(go), str(tmp_path / f"out{p}.json")],
            stderr=subprocess.PIPE, text=True,
        )
        for p in range(PROCESSES)
    ]
    try:
        # Every process has connected (and migrated) by the time it checks for `go` often.
        asyncio.run(asyncio.sleep(2.0))
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            # Reap it and close its pipe: a pipe left to the garbage collector would surface
            # in a later test as an unraisable ResourceWarning.
            proc.communicate()
    handed: dict[int, set[str]] = defaultdict(set)
    first_claims: dict[int, int] = defaultdict(int)
    for p in range(PROCESSES):
        for client in json.loads((tmp_path / f"out{p}.json").read_text()):
            assert len(client) == KEYS
            for key, job_id, duplicate in client:
                handed[key].add(job_id)
                first_claims[key] += 0 if duplicate else 1
    jobs = asyncio.run(stored_jobs(url))
    per_key: dict[int, list[str]] = defaultdict(list)
    for job_id, order in jobs:
        per_key[order].append(job_id)
    assert len(jobs) == KEYS, f"{len(jobs)} jobs stored for {KEYS} keys"
    assert all(len(ids) == 1 for ids in per_key.values())
    assert all(handed[k] == {per_key[k][0]} for k in range(KEYS))
    assert all(first_claims[k] == 1 for k in range(KEYS))
    print(f"FIGURES R17 {kind}: clients={PROCESSES}x{CLIENTS} keys={KEYS} batch={BATCH} "
          f"jobs={len(jobs)} enqueues={PROCESSES * CLIENTS * KEYS}")
