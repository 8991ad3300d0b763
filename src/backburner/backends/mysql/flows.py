"""Chains and groups on MySQL (`backburner.flows`): backends/flow_rules.py decides, inside the
transaction of the transition that completed, ended or retried the job the others follow; this
reads what a rule asks for (locked, in id order, when the rule may change it) and defers the
changes it returns to the transaction's next script."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backburner import codec
from backburner.backends.flow_rules import (
    CancelWaiting,
    FlowChange,
    FlowNode,
    MakeReady,
    Plan,
    Read,
    WaitLess,
    dependency_error,
    drive_async,
)
from backburner.backends.mysql.connections import Session, Statement
from backburner.backends.mysql.rows import flow_node
from backburner.job import WAITING_RUN_AT


class Flows:
    def __init__(self, queries: Mapping[str, str]) -> None:
        self._q = queries

    async def apply(self, s: Session, plan: Plan, now: float) -> None:
        async def read(wanted: Read) -> dict[str, FlowNode]:
            query = self._q["flow_nodes_to_change" if wanted.to_change else "flow_nodes"]
            rows = await s.rows(query, {"ids": tuple(wanted.ids)})
            return {node.id: node for r in rows if (node := flow_node(r)) is not None}

        # Deferred changes go out before the next read: a later plan of the same
        # transaction (two members of a group completing in one batch) sees them.
        s.defer(*(self._change(c, now) for c in await drive_async(plan, read)))

    def _change(self, change: FlowChange, now: float) -> Statement:
        params: dict[str, Any] = {"id": change.id, "now": now}
        if isinstance(change, WaitLess):
            return self._q["flow_wait"], {**params, "waiting_on": change.waiting_on}
        if isinstance(change, MakeReady):
            return self._q["flow_ready"], {**params, "args": change.args}
        if isinstance(change, CancelWaiting):
            error = dependency_error(change.after, change.how, now)
            return self._q["flow_cancel"], {**params, "error": codec.dumps(error)}
        return self._q["flow_rearm"], {**params, "waiting_on": change.waiting_on,
                                       "run_at": WAITING_RUN_AT}
