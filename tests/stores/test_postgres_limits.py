"""PostgreSQL limits: a slot whose hand-over a dying process missed (the transition that
freed it committed, its unpark transaction never ran) goes to its parked job at the next
rescue, so no parked job waits for ever."""

from __future__ import annotations

from backburner import codec
from backburner.backends.protocol import NewJob
from backburner.ids import new_job_id
from backburner.job import JobState

from .pg_helpers import opened, schema_url


def limited() -> NewJob:
    return NewJob(
        id=new_job_id(), task="pg.limited", queue="default", priority=0, args=codec.dumps([]),
        kwargs=codec.dumps({}), max_attempts=3, limit_concurrency=1,
    )


async def test_rescue_hands_on_a_slot_whose_hand_over_was_missed() -> None:
    url, _ = schema_url()
    async with opened(url) as backend:
        first, second = limited(), limited()
        await backend.insert([first, second])
        claim = await backend.claim("w1", ["default"], 10, 30)
        assert [j.id for j in claim.jobs] == [first.id]
        # The completion commits, the process dies before its unpark transaction: the
        # completion alone, as its statement wrote it.
        async with backend._pool.acquire() as conn:
            await conn.execute(
                f"UPDATE {backend.config.quoted_schema}.jobs SET state = 'completed', "
                "finished_at = now(), lease_until = NULL WHERE id = $1", first.id,
            )
        assert (await backend.claim("w2", ["default"], 10, 30)).jobs == []
        waiting = await backend.get(second.id)
        assert waiting is not None and waiting.state is JobState.PENDING
        await backend.rescue_expired(max_lost=3)
        assert [j.id for j in (await backend.claim("w2", ["default"], 10, 30)).jobs] == [
            second.id
        ]
