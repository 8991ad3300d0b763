"""The rules of chains and groups (`backburner.flows`), written once for every store.

A job of a flow waits for others (`depends_on`); when a transition ends one of those, the
store must, in the same atomic step, release what waits for it (`plan_release`), cancel it and
what waits on it in turn (`plan_cancel`), or, when it is retried, make what it cancelled wait
again (`plan_rearm`).

The rules do no I/O. Each plan is a generator: it yields the ids of the jobs it needs to
read, receives them as `FlowNode`s (ids it does not get are taken as deleted), and returns the
changes to make. A store drives it with `drive` (or `drive_async`) inside its own transaction,
reading with whatever locks its isolation needs, then applies the changes in order. The Redis
store keeps its own Lua port for atomicity; tests/contract/test_flow_rules_model.py runs random
flows through every store against these rules, so a port cannot drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from backburner.backends.protocol import Receives
from backburner.job import JobState

_ENDED_BADLY = (JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class FlowNode:
    """What the rules read of one job of a flow."""

    id: str
    state: JobState
    reason: str | None
    waiting_on: int
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    receives: Receives | None = None
    args: str = "[]"
    """JSON array, as stored."""
    result: str | None = None
    """JSON, as stored."""

    @property
    def waits(self) -> bool:
        """Still waiting for a dependency: the only state a release or a cancel touches."""
        return self.state is JobState.SCHEDULED and self.waiting_on > 0

    @property
    def cancelled_by_dependency(self) -> bool:
        return self.state is JobState.CANCELLED and self.reason == "dependency_failed"


@dataclass(frozen=True, slots=True)
class WaitLess:
    """One of its dependencies completed; it still waits for `waiting_on` others."""

    id: str
    waiting_on: int


@dataclass(frozen=True, slots=True)
class MakeReady:
    """Its last dependency completed: `pending` now, with these stored arguments."""

    id: str
    args: str


@dataclass(frozen=True, slots=True)
class CancelWaiting:
    """A job it waited for (`after`) ended in `how` (failed, cancelled, deleted): it ends
    `cancelled` with reason `dependency_failed` and the error `dependency_error` gives."""

    id: str
    after: str
    how: str


@dataclass(frozen=True, slots=True)
class Rearm:
    """The job that cancelled it is retried: `scheduled` at `job.WAITING_RUN_AT` again, waiting
    for `waiting_on` jobs."""

    id: str
    waiting_on: int


@dataclass(frozen=True, slots=True)
class Read:
    """Jobs a plan needs to read."""

    ids: tuple[str, ...]
    to_change: bool
    """The plan may change these jobs: a store with row locks reads them locked (`FOR
    UPDATE`), so concurrent transitions of one flow serialize on the jobs they change. The
    others are only looked at (locking them too could deadlock with a worker finishing one)."""


FlowChange = WaitLess | MakeReady | CancelWaiting | Rearm
Plan = Generator[Read, Mapping[str, FlowNode], list[FlowChange]]
"""Yields the jobs to read, is sent those found, returns the changes in order."""


class _View:
    """The nodes a plan has read, with its own changes already applied to them (a cascade
    reads a job after changing its parent, and a diamond reaches a job twice)."""

    def __init__(self) -> None:
        self.nodes: dict[str, FlowNode | None] = {}

    def missing(self, ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for i in ids if i not in self.nodes))

    def learn(self, asked: Sequence[str], found: Mapping[str, FlowNode]) -> None:
        for job_id in asked:
            self.nodes[job_id] = found.get(job_id)

    def get(self, job_id: str) -> FlowNode | None:
        return self.nodes.get(job_id)

    def change(self, job_id: str, **fields: Any) -> None:
        node = self.nodes[job_id]
        assert node is not None
        self.nodes[job_id] = replace(node, **fields)


def _read(
    view: _View, ids: Iterable[str], to_change: bool = False
) -> Generator[Read, Mapping[str, FlowNode], None]:
    asked = view.missing(ids)
    if asked:
        view.learn(asked, (yield Read(asked, to_change)))


def released_args(args: str, receives: str | None, results: Sequence[str | None]) -> str:
    """The stored positional arguments (a JSON array) of a job of a flow being released:
    what it `receives` put first (see `NewJob.receives`). `results`: the stored results
    (JSON) of its dependencies, in `depends_on` order. String surgery, like the Lua side:
    the stored arguments are kept byte for byte."""
    if receives is None:
        return args
    if receives == "result":
        given = results[0] if results and results[0] is not None else "null"
    else:
        given = "[" + ",".join(r if r is not None else "null" for r in results) + "]"
    rest = args.strip()[1:-1].strip()
    return f"[{given},{rest}]" if rest else f"[{given}]"


def dependency_error(job_id: str, state: str, now: float) -> dict[str, Any]:
    """The error entry of a job cancelled because `job_id`, which it waited for, ended in
    `state` (failed, cancelled) or was deleted before it ran."""
    return {
        "attempt": 0,
        "type": "DependencyFailed",
        "message": f"job {job_id}, which this job waited for, did not complete: {state}",
        "traceback": None,
        "reason": "dependency_failed",
        "at": now,
    }


def plan_release(job_id: str) -> Plan:
    """`job_id` completed: each job waiting for it waits for one job less, and the one that
    waited only for it becomes ready with what it `receives`. Jobs cancelled or deleted
    meanwhile are left alone."""
    view = _View()
    yield from _read(view, (job_id,))
    done = view.get(job_id)
    if done is None:
        return []
    yield from _read(view, done.dependents, to_change=True)
    changes: list[FlowChange] = []
    for dep_id in done.dependents:
        dep = view.get(dep_id)
        if dep is None or not dep.waits:
            continue
        if dep.waiting_on > 1:
            changes.append(WaitLess(dep_id, dep.waiting_on - 1))
            view.change(dep_id, waiting_on=dep.waiting_on - 1)
            continue
        args = dep.args
        if dep.receives is not None:
            yield from _read(view, dep.depends_on)
            results = [_result(view.get(d)) for d in dep.depends_on]
            args = released_args(args, dep.receives, results)
        changes.append(MakeReady(dep_id, args))
        view.change(dep_id, waiting_on=0, state=JobState.PENDING, args=args)
    return changes


def _result(node: FlowNode | None) -> str | None:
    return node.result if node is not None else None


def plan_cancel(job_id: str, how: str, dependents: Sequence[str] | None = None) -> Plan:
    """`job_id` ended without completing (`how`: failed, cancelled) or was deleted before it
    ran (`how="deleted"`, with the `dependents` it had, since it can no longer be read):
    what waits for it never runs, nor what waits for those."""
    view = _View()
    if dependents is None:
        yield from _read(view, (job_id,))
        ended = view.get(job_id)
        dependents = ended.dependents if ended is not None else ()
    changes: list[FlowChange] = []
    level = [(job_id, how, tuple(dependents))]
    while level:
        yield from _read(view, (d for _, _, deps in level for d in deps), to_change=True)
        next_level = []
        for after, after_how, deps in level:
            for dep_id in deps:
                dep = view.get(dep_id)
                if dep is None or not dep.waits:
                    continue
                changes.append(CancelWaiting(dep_id, after, after_how))
                view.change(dep_id, state=JobState.CANCELLED, reason="dependency_failed")
                next_level.append((dep_id, "cancelled", dep.dependents))
        level = next_level
    return changes


def plan_rearm(job_id: str) -> Plan:
    """`job_id` was retried (it is live again): each job it cancelled (and on) waits for it
    again, unless another job it waits for failed, was cancelled or is gone."""
    view = _View()
    yield from _read(view, (job_id,))
    retried = view.get(job_id)
    if retried is None:
        return []
    changes: list[FlowChange] = []
    level = retried.dependents
    while level:
        yield from _read(view, level, to_change=True)
        candidates = [d for d in dict.fromkeys(level) if _cancelled_by_dependency(view.get(d))]
        yield from _read(view, (d for c in candidates for d in _node(view, c).depends_on))
        next_level: list[str] = []
        for dep_id in candidates:
            dep = _node(view, dep_id)
            parents = [view.get(d) for d in dep.depends_on]
            if any(p is None or p.state in _ENDED_BADLY for p in parents):
                continue  # another job it waits for ended badly: it stays cancelled
            waiting = sum(
                1 for p in parents if p is not None and p.state is not JobState.COMPLETED
            )
            changes.append(Rearm(dep_id, waiting))
            view.change(dep_id, state=JobState.SCHEDULED, reason=None, waiting_on=waiting)
            next_level.extend(dep.dependents)
        level = tuple(next_level)
    return changes


def _cancelled_by_dependency(node: FlowNode | None) -> bool:
    return node is not None and node.cancelled_by_dependency


def _node(view: _View, job_id: str) -> FlowNode:
    node = view.get(job_id)
    assert node is not None
    return node


def drive(plan: Plan, read: Callable[[Read], Mapping[str, FlowNode]]) -> list[FlowChange]:
    """Run a plan with a synchronous reader (inside the caller's transaction)."""
    try:
        wanted = next(plan)
        while True:
            wanted = plan.send(read(wanted))
    except StopIteration as done:
        return list(done.value)


async def drive_async(
    plan: Plan, read: Callable[[Read], Awaitable[Mapping[str, FlowNode]]]
) -> list[FlowChange]:
    """Run a plan with an asynchronous reader (inside the caller's transaction)."""
    try:
        wanted = next(plan)
        while True:
            wanted = plan.send(await read(wanted))
    except StopIteration as done:
        return list(done.value)
