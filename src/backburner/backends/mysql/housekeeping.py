"""The rescue of expired leases on MySQL (`JobTransitions.rescue_expired`), run by the
housekeeping leader: the rows it saw expire, locked by primary key (SKIP LOCKED: a heartbeat
holding one at that moment wins), go back to pending, or end as poison jobs once they lost
`max_lost` workers (cancelled when a cancel was requested); what waits for an ended one is
cancelled (flow_rules), in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backburner import codec
from backburner.backends.flow_rules import plan_cancel
from backburner.backends.mysql.connections import Row, Session
from backburner.backends.mysql.flows import Flows
from backburner.backends.protocol import Transition
from backburner.backends.records import id_list
from backburner.job import FailureReason, JobState

LOST = "the worker holding this attempt stopped renewing its lease"


async def rescue(
    s: Session, queries: Mapping[str, str], flows: Flows, seqs: Mapping[str, Any],
    max_lost: int,
) -> tuple[list[Transition], list[Row]]:
    """Rescue the rows `seqs` names that are still expired; returns the transitions and the
    rows (whose freed slots the caller hands on)."""
    clock, locked = await s.run((queries["clock"], ()), (queries["lock_expired"], seqs))
    now = float(clock.rows[0]["now"])
    moved = []
    for r in locked.rows:
        lost = r["lost"] + 1
        # A lost attempt is not the task's fault: it counts in `lost`, not `failures`.
        poison = lost >= max_lost and not r["cancel_requested"]
        state = "cancelled" if r["cancel_requested"] else "failed" if poison else "pending"
        reason = {"cancelled": "cancelled", "failed": "worker_lost"}.get(state)
        message = LOST if not poison else (
            f"stopped as a poison job after {lost} worker deaths (the max_lost limit, "
            f"whatever its retries): {LOST}"
        )
        error = {"attempt": r["attempt"], "type": "WorkerLost", "message": message,
                 "traceback": None, "reason": "worker_lost", "at": now}
        s.defer((queries["rescue"], {
            "seq": r["seq"], "state": state, "reason": reason, "now": now,
            "finished_at": None if state == "pending" else now, "error": codec.dumps(error),
        }))
        if r["dependents"] is not None and state != "pending":
            await flows.apply(s, plan_cancel(r["id"], state, id_list(r["dependents"])), now)
        moved.append(Transition(r["id"], r["task"], r["queue"], JobState(state), r["attempt"],
                                FailureReason(reason) if reason else None))
    return moved, locked.rows


async def fold_counts(s: Session, queries: Mapping[str, str]) -> int:
    """Move a share of the counts' log (migration 2) into backburner_job_counts, in the
    caller's transaction; returns the rows folded. Counters are updated in key order, so two
    folders at once never wait on each other in a circle."""
    (found,) = await s.run((queries["count_deltas"], ()))
    if not found.rows:
        return 0
    sums: dict[tuple[str, str], int] = {}
    for r in found.rows:
        key = (r["queue"], r["state"])
        sums[key] = sums.get(key, 0) + int(r["n"])
    values = ", ".join(["(%s, %s, %s)"] * len(sums))
    params = [v for (queue, state), n in sorted(sums.items()) for v in (queue, state, n)]
    await s.run(
        (queries["add_counts"].replace("{values}", values), tuple(params)),
        (queries["forget_deltas"], {"ids": tuple(r["id"] for r in found.rows)}),
    )
    return len(found.rows)
