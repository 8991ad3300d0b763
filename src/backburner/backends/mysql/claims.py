"""The claim on MySQL: due scheduled jobs are staged, ready rows are read in claim order with
`FOR UPDATE SKIP LOCKED` (concurrent claimers never wait for each other nor share a row),
checked (R20), admitted under their limits (limits.py), then started, all in one transaction.

Rows are read before they are written (MySQL has no UPDATE ... RETURNING): a row put aside
for its limits is simply not started, and keeps its attempt number and its unique key. Suspects
(`lost > 0`: a worker died holding them) are claimed only alone, by a worker that runs nothing
else, one at a time (see `JobTransitions.claim`).
"""

from __future__ import annotations

from collections.abc import Mapping

from backburner import codec
from backburner.backends.flow_rules import plan_cancel
from backburner.backends.mysql.connections import Row, Session
from backburner.backends.mysql.flows import Flows
from backburner.backends.mysql.limits import Limits
from backburner.backends.mysql.rows import claimed_job
from backburner.backends.protocol import Claim
from backburner.backends.records import claim_problems, invalid_row_error

ROUNDS = 8
"""Most reads of one queue in one claim while claimed jobs over their limits are put aside;
past that the claim returns what it has and says more may be ready (next_run_at = now)."""


class Claimer:
    def __init__(self, queries: Mapping[str, str], limits: Limits, flows: Flows) -> None:
        self._q = queries
        self._limits = limits
        self._flows = flows

    async def claim(
        self, s: Session, worker_id: str, queues: tuple[str, ...], limit: int, lease: float,
        alone: bool,
    ) -> Claim:
        # The first read rides with the clock (one script): a plain claim is this script
        # and the one that starts its rows and commits.
        first = {"queue": queues[0], "limit": 1 if alone else limit}
        meta, suspects, read = await s.run(
            (self._q["claim_meta"], ()), (self._q["suspects_waiting"], {"queues": queues}),
            (self._q["claim_suspect" if alone else "claim_ready"], first),
        )
        now, next_run_at = float(meta.rows[0]["now"]), meta.rows[0]["next_run_at"]
        ahead: list[Row] | None = read.rows
        if next_run_at is not None and next_run_at <= now:
            next_run_at = await self._stage(s, now)
            ahead = None  # read again: staged jobs may come first
        start = {"worker_id": worker_id, "lease": lease, "now": now}
        delayed: list[float] = []
        if alone:
            for queue in queues:
                for _ in range(ROUNDS):
                    rows, kept = await self._take(s, queue, 1, now, delayed, suspect=True,
                                                  read=ahead)
                    ahead = None
                    if kept:
                        s.defer((self._q["start"], {**start, "seqs": (kept[0]["seq"],)}))
                        return Claim([claimed_job(kept[0], now)], now, None, False)
                    if not rows:
                        break
        taken: list[tuple[int, Row]] = []
        for position, queue in enumerate(queues):
            for _ in range(ROUNDS):
                wanted = limit - len(taken)
                if wanted <= 0:
                    break
                rows, kept = await self._take(s, queue, wanted, now, delayed, suspect=False,
                                              read=None if alone else ahead)
                ahead = None
                if kept:
                    s.defer((self._q["start"], {**start, "seqs": tuple(r["seq"] for r in kept)}))
                taken += [(position, r) for r in kept]
                if len(rows) < wanted:
                    break  # the queue has no more ready jobs
            else:
                delayed.append(now)  # still jobs over their limits at the head: more may wait
        if delayed and (next_run_at is None or min(delayed) < next_run_at):
            next_run_at = min(delayed)  # the worker's next claim is due then
        taken.sort(key=lambda t: (t[0], -t[1]["priority"], t[1]["seq"]))
        jobs = [claimed_job(r, now) for _, r in taken]
        return Claim(jobs, now, next_run_at if len(jobs) < limit else None,
                     bool(suspects.rows[0]["suspects"]))

    async def _stage(self, s: Session, now: float) -> float | None:
        """Due scheduled jobs become pending (every queue); returns the next due time."""
        due = await s.rows(self._q["due"], {"now": now})
        seqs = tuple(r["seq"] for r in due)
        stage = [(self._q["stage"], {"seqs": seqs, "now": now})] if seqs else []
        *_, meta = await s.run(*stage, (self._q["claim_meta"], ()))
        next_run_at: float | None = meta.rows[0]["next_run_at"]
        return next_run_at

    async def _take(
        self, s: Session, queue: str, wanted: int, now: float, delayed: list[float], *,
        suspect: bool, read: list[Row] | None,
    ) -> tuple[list[Row], list[Row]]:
        """Ready rows of `queue`, locked (`read`: already read), and those of them that may
        start now: rows that are not what Backburner writes fail, rows over their limits are
        put aside."""
        rows = read
        if rows is None:
            query = self._q["claim_suspect" if suspect else "claim_ready"]
            rows = await s.rows(query, {"queue": queue, "limit": wanted})
        valid = []
        for r in rows:
            problems = claim_problems(r)
            if not problems:
                valid.append(r)
                continue
            error = codec.dumps(invalid_row_error(problems, r["attempt"] + 1, now))
            s.defer((self._q["fail_invalid"], {"seq": r["seq"], "error": error, "now": now}))
            if r["has_dependents"]:  # they never run
                await self._flows.apply(s, plan_cancel(r["id"], "failed"), now)
        return rows, await self._limits.admit(s, valid, now, delayed)
