"""Task limits on MySQL (`backburner.limits`): backends/limit_rules.py decides; this reads what
the rules need inside the caller's transaction and writes what they return.

A claim admits its limited rows before it starts them, and a transition that stops limited
jobs hands their slots to parked ones, each under the lock rows of the groups concerned
(`backburner_limit_locks`, locked in one order): the MySQL counterpart of the PostgreSQL
backend's advisory locks, released with the transaction. Running jobs are counted by a read
that sees every commit before it (READ COMMITTED), so no group ever runs over its limit and
no parked job misses a slot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from backburner.backends.limit_rules import (
    PARKED_ON,
    Group,
    groups_of,
    plan_admission,
    rate_windows,
    slots_freed,
)
from backburner.backends.mysql.connections import Row, Session, Statement
from backburner.backends.mysql.rows import limited_job, lock_name

LockedGroup = Group | tuple[str, str, str, None]
"""A concurrency group, or a rate window as ("rate", queue, task, None)."""


class Limits:
    def __init__(self, queries: Mapping[str, str]) -> None:
        self._q = queries

    def lock(self, groups: Iterable[LockedGroup]) -> Statement:
        """The statement that locks the groups' rows (see lock_groups), in one order."""
        names = sorted({lock_name(g) for g in groups})
        sql = self._q["lock_groups"].replace("{rows}", ", ".join(["(%s)"] * len(names)))
        return sql, tuple(names)

    def _running(self, group: Sequence[str | None]) -> Statement:
        kind, queue, task, key = group
        query = self._q["running_in_task" if kind == "task" else "running_in_key"]
        return query, {"queue": queue, "task": task, "key": key}

    async def admit(
        self, s: Session, rows: list[Row], now: float, delayed: list[float]
    ) -> list[Row]:
        """The claimed rows (not started yet) that may start: those over a concurrency
        limit are parked, those over their rate delayed (the earliest time such a job may
        start is added to `delayed`). Costs nothing when no row has limits."""
        limited = [job for r in rows if (job := limited_job(r)) is not None]
        if not limited:
            return rows
        groups = groups_of(limited)
        windows = rate_windows(limited)
        reads = [statement for queue, task, period in windows for statement in (
            (self._q["trim_rate_window"], {"queue": queue, "task": task, "since": now - period}),
            (self._q["rate_starts"], {"queue": queue, "task": task}),
        )]
        rated = [("rate", queue, task, None) for queue, task, _ in windows]
        _, *found = await s.run(self.lock([*groups, *rated]), *map(self._running, groups),
                                *reads)
        # The rules count the claimed jobs among the running (the claim is written first).
        in_claim = Counter(group for job in limited for group, _ in job.groups)
        running = {g: int(found[i].rows[0]["n"]) + in_claim[g] for i, g in enumerate(groups)}
        starts = {
            (queue, task): [float(r["at"]) for r in found[len(groups) + 2 * i + 1].rows]
            for i, (queue, task, _) in enumerate(windows)
        }
        admission = plan_admission(limited, running, starts, now)
        seq = {r["id"]: r["seq"] for r in rows}
        s.defer(*((self._q["park"], {"seq": seq[job_id], "parked": PARKED_ON[kind]})
                  for job_id, kind in admission.parked))
        s.defer(*((self._q["delay_for_rate"], {"seq": seq[job_id], "run_at": run_at})
                  for job_id, run_at in admission.delayed))
        s.defer(*((self._q["record_start"], {"queue": queue, "task": task, "now": now})
                  for (queue, task), n in admission.starts.items() for _ in range(n)))
        if admission.next_run_at is not None:
            delayed.append(admission.next_run_at)
        return [r for r in rows if r["id"] not in admission.refused]

    async def free_slots(self, s: Session, stopped: Iterable[Row], woken: set[str]) -> None:
        """Jobs that stopped running hand their slots to the next parked jobs of their
        groups; `woken` gets the queues of the jobs unparked. Nothing is read or written for
        jobs without concurrency limits."""
        freed = slots_freed(job for r in stopped if (job := limited_job(r)) is not None)
        if freed:
            await self._unpark(s, freed, woken)

    async def unpark_stranded(self, s: Session, woken: set[str]) -> None:
        """Slots whose hand-over a dying process missed go to their parked jobs (the rescue
        runs this; unparking one too many is harmless: the claim parks it again)."""
        groups = await s.rows(self._q["parked_groups"])
        if not groups:
            return
        keys = [(g["kind"], g["queue"], g["task"], g["key"]) for g in groups]
        found = await s.run(*map(self._running, keys))
        free = {
            key: int(g["allowed"]) - int(r.rows[0]["n"])
            for key, g, r in zip(keys, groups, found, strict=True) if g["allowed"] is not None
        }
        stranded: dict[Group, int] = {k: n for k, n in free.items() if n > 0}
        if stranded:
            await self._unpark(s, stranded, woken)

    async def _unpark(self, s: Session, freed: Mapping[Group, int], woken: set[str]) -> None:
        groups = sorted(freed, key=lambda g: (g[0], g[1], g[2], g[3] or ""))
        _, *found = await s.run(self.lock(groups), *(
            (self._q["parked_in_task" if kind == "task" else "parked_in_key"],
             {"queue": queue, "task": task, "key": key, "n": freed[(kind, queue, task, key)]})
            for kind, queue, task, key in groups
        ))
        chosen = [r for result in found for r in result.rows]
        if chosen:
            s.defer((self._q["unpark"], {"seqs": tuple(r["seq"] for r in chosen)}))
            woken.update(r["queue"] for r in chosen)
