"""New jobs on MySQL (`JobTransitions.insert`), in our transaction or the application's.

A job with a unique key is stored only if no live job holds the key: the holders are looked
up first (after period-scoped holds that lapsed let go), the others are inserted in one
statement. The unique index on `unique_live` (see the migration) is what makes one holder
per key atomic: an insert of a key that another insert still in flight takes waits for it,
and is refused once that one commits; the next round then finds that holder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backburner.backends.mysql import errors
from backburner.backends.mysql.connections import Session
from backburner.backends.mysql.rows import insert_jobs, unique_hash
from backburner.backends.protocol import Inserted, NewJob
from backburner.errors import ConfigurationError
from backburner.job import JobState

ROUNDS = 10


async def insert(
    s: Session, queries: Mapping[str, str], table: str, jobs: Sequence[NewJob]
) -> list[Inserted]:
    """Insert what no live job holds the key of; answer the holders' ids for the rest."""
    # The clock itself, not a transaction's instant: `s` may be the application's.
    now = float((await s.rows(queries["now"]))[0]["now"])
    hashes = {j.id: h for j in jobs if (h := unique_hash(j)) is not None}
    used: dict[str, Inserted] = {}
    waiting = list(jobs)
    for _ in range(ROUNDS):
        keyed = tuple(hashes[j.id] for j in waiting if j.id in hashes)
        if keyed:
            params = {"hashes": keyed, "now": now}
            _, found = await s.run((queries["release_lapsed_keys"], params),
                                   (queries["unique_holders"], params))
            held = {r["unique_live"]: Inserted(r["id"], JobState(r["state"])) for r in found.rows}
            used.update((j.id, held[hashes[j.id]]) for j in waiting if hashes.get(j.id) in held)
        waiting = [j for j in waiting if j.id not in used]
        if not waiting:
            break
        try:
            await s.run(insert_jobs(table, waiting, now))
        except errors.TRANSLATED as exc:
            if not (keyed and errors.is_duplicate(exc, "jobs_unique")):
                raise
            continue  # a concurrent insert of one of these keys committed first
        used.update((j.id, Inserted(j.id)) for j in waiting)
        break
    else:
        keys = [j.unique_key for j in waiting]
        raise ConfigurationError(f"unique keys kept changing hands during the insert: {keys}")
    return [used[j.id] for j in jobs]
