"""Row locks on PostgreSQL: a worker's heartbeat and its batched acknowledgements take the
same rows in the same order (by id), so running them at once never deadlocks."""

from __future__ import annotations

import asyncio
import random

from backburner.backends.protocol import Completion, Failure, NewJob, Release
from backburner.ids import new_job_id
from backburner.job import FailureReason

from .pg_helpers import opened, schema_url


def _jobs(count: int) -> list[NewJob]:
    return [
        NewJob(id=new_job_id(), task="t", queue="default", priority=0, args="[]",
               kwargs="{}", max_attempts=3)
        for _ in range(count)
    ]


async def test_heartbeats_and_batched_acks_never_deadlock() -> None:
    url, _ = schema_url(pool_size="8")
    rng = random.Random(7)
    async with opened(url) as backend:
        await backend.insert(_jobs(600))
        held = (await backend.claim("w", ["default"], 600, 30)).jobs
        rng.shuffle(held)
        error = {"type": "E", "message": "m", "traceback": None}
        for start in range(0, len(held), 40):
            batch = held[start:start + 40]
            third = len(batch) // 3
            acks = [
                backend.complete([Completion(j.id, j.attempt, "1") for j in batch[:third]]),
                backend.fail([Failure(j.id, j.attempt, error, FailureReason.ERROR, retry_in=60)
                              for j in batch[third:2 * third]]),
                backend.release([Release(j.id, j.attempt) for j in batch[2 * third:]]),
            ]
            # Any deadlock would surface here as BackendUnavailableError (SQLSTATE 40P01).
            results = await asyncio.gather(
                *acks, backend.heartbeat("w", 30), backend.heartbeat("w", 30)
            )
            assert all(all(r) for r in results[:3])
        assert (await backend.heartbeat("w", 30)).owned == {}
