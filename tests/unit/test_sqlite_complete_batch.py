"""SQLite completes a batch in one executemany when every item is accepted, and item by item
(after undoing it) when some are not: the answers and the rows are those of the item-by-item
writes either way."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from backburner import Backburner
from backburner.backends.protocol import Completion


async def test_a_batch_with_stale_and_repeated_items_answers_item_by_item(
    tmp_path: Path,
) -> None:
    app = Backburner(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.task(name="batch.noop")
    async def noop() -> None:
        return None

    async with app:
        await noop.enqueue_many([() for _ in range(5)])
        backend = app.backend
        first = (await backend.claim("w", ["default"], 2, 30.0)).jobs
        assert await backend.complete(
            [Completion(j.id, j.attempt, f'"{j.id}"') for j in first]
        ) == [True, True]

        a, b, c = (await backend.claim("w", ["default"], 3, 30.0)).jobs
        answers = await backend.complete([
            Completion(a.id, a.attempt, '"a"'),
            Completion(b.id, b.attempt + 1, '"stale"'),  # not this job's attempt
            Completion(c.id, c.attempt, '"c"'),
            Completion(a.id, a.attempt, '"again"'),  # already completed just above
            Completion(first[0].id, first[0].attempt, '"late"'),  # completed before
        ])
        assert answers == [True, False, True, False, False]

        states = {j: (await app.get_job(j)) for j in (a.id, b.id, c.id, first[0].id)}
        assert states[a.id].state.value == "completed" and states[a.id].result == "a"
        assert states[b.id].state.value == "running"
        assert states[c.id].state.value == "completed" and states[c.id].result == "c"
        assert states[first[0].id].result == first[0].id
    # The per-state counts kept by triggers saw the undone batch undone too.
    with closing(sqlite3.connect(tmp_path / "jobs.db")) as conn:
        counts = dict(conn.execute(
            "SELECT state, n FROM backburner_job_counts WHERE queue = 'default' AND n > 0"))
    assert counts == {"completed": 4, "running": 1}
