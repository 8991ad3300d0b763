"""The rules of task limits (`backburner.limits`), written once for every store.

A store claims jobs, then asks `plan_admission` which of the claimed jobs that have limits
may run: a job whose concurrency group is full is parked, one over its task's rate is delayed
to when the window has room. When limited jobs stop
running, `slots_freed` says how many slots each group got back, for the store to hand to its
parked jobs. No I/O here: a store reads the counts a rule needs inside its transaction and
applies what the rule returns. The Redis store keeps its own Lua port for atomicity;
tests/contract/test_limit_rules_model.py holds every store to these rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

GroupKind = Literal["task", "key"]
Group = tuple[GroupKind, str, str, str | None]
"""A concurrency group: (kind, queue, task, key). Kind "task" counts the task's jobs that
have a task limit (key None); kind "key" the jobs of one key that have a key limit."""

PARKED_ON: Mapping[GroupKind, int] = {"task": 1, "key": 2}
"""How the SQL stores mark a job parked on a group of each kind (their `parked` column)."""


@dataclass(frozen=True, slots=True)
class LimitedJob:
    """What the rules read of a job with limits (claimed, or stopped running)."""

    id: str
    queue: str
    task: str
    priority: int = 0
    order: int = 0
    """Claim order within a priority (the store's FIFO sequence)."""
    limit_concurrency: int | None = None
    limit_key: str | None = None
    limit_key_concurrency: int | None = None
    rate_count: int | None = None
    rate_period: float | None = None

    @property
    def groups(self) -> list[tuple[Group, int]]:
        """The concurrency groups it counts in, with their limits: the key's group first
        (a job refused for both waits for its key)."""
        groups: list[tuple[Group, int]] = []
        if self.limit_key is not None and self.limit_key_concurrency is not None:
            groups.append((("key", self.queue, self.task, self.limit_key),
                           self.limit_key_concurrency))
        if self.limit_concurrency is not None:
            groups.append((("task", self.queue, self.task, None), self.limit_concurrency))
        return groups

    @property
    def rated(self) -> bool:
        return self.rate_count is not None and self.rate_period is not None


@dataclass(slots=True)
class Admission:
    """What a claim's limited jobs come to."""

    parked: list[tuple[str, GroupKind]] = field(default_factory=list)
    """Jobs to put back, waiting for a free slot of the group of this kind."""
    delayed: list[tuple[str, float]] = field(default_factory=list)
    """Jobs to put back, scheduled for this time (epoch seconds)."""
    starts: dict[tuple[str, str], int] = field(default_factory=dict)
    """Starts to record now in the rate window of (queue, task)."""

    @property
    def refused(self) -> set[str]:
        return {job_id for job_id, _ in self.parked} | {job_id for job_id, _ in self.delayed}

    @property
    def next_run_at(self) -> float | None:
        """The earliest time a delayed job may start (None: none was delayed)."""
        return min((at for _, at in self.delayed), default=None)


def groups_of(jobs: Iterable[LimitedJob]) -> list[Group]:
    """Every concurrency group the jobs count in, once each, in a stable order (the order
    a store with locks takes them in)."""
    seen = {group: None for job in jobs for group, _ in job.groups}
    return sorted(seen, key=lambda g: (g[0], g[1], g[2], g[3] or ""))


def rate_windows(jobs: Iterable[LimitedJob]) -> list[tuple[str, str, float]]:
    """The rate windows (queue, task, period) the jobs start in, once each."""
    seen = {(j.queue, j.task): j.rate_period for j in jobs if j.rated}
    return [(queue, task, float(period or 0)) for (queue, task), period in seen.items()]


def plan_admission(
    claimed: Sequence[LimitedJob],
    running: Mapping[Group, int],
    starts: Mapping[tuple[str, str], Sequence[float]],
    now: float,
) -> Admission:
    """Which `claimed` jobs may run. `running`: jobs running per group of `groups_of
    (claimed)`, the claimed ones included (the claim is written first); `starts`: per rate
    window of `rate_windows(claimed)`, the starts still in it (younger than the period),
    oldest first; `now`: the store's clock.

    The jobs are judged one at a time in claim order (priority, then FIFO), as if each were
    claimed alone: a job whose group is full is parked on it (its key's group first), one
    over its rate is delayed, and only a job that runs takes a slot or a start. So a job put
    back for one limit never holds a slot of another, whatever the batch it came in."""
    jobs = sorted(claimed, key=lambda j: (-j.priority, j.order))
    in_claim: dict[Group, int] = {}
    for job in jobs:
        for group, _ in job.groups:
            in_claim[group] = in_claim.get(group, 0) + 1
    taken = {g: running.get(g, n) - n for g, n in in_claim.items()}
    windows: dict[tuple[str, str], list[float]] = {}
    admission = Admission()
    for job in jobs:
        full = next((g for g, limit in job.groups if taken[g] >= limit), None)
        if full is not None:
            admission.parked.append((job.id, full[0]))
            continue
        if job.rated:
            window = (job.queue, job.task)
            seen = windows.setdefault(window, list(starts.get(window, ())))
            count, period = int(job.rate_count or 0), float(job.rate_period or 0)
            if len(seen) >= count:
                # Room again once the oldest start that must leave for one more has.
                admission.delayed.append((job.id, seen[len(seen) - count] + period))
                continue
            seen.append(now)
            admission.starts[window] = admission.starts.get(window, 0) + 1
        for group, _ in job.groups:
            taken[group] += 1
    return admission


def slots_freed(stopped: Iterable[LimitedJob]) -> dict[Group, int]:
    """Slots given back per concurrency group by jobs that stopped running."""
    freed: dict[Group, int] = {}
    for job in stopped:
        for group, _ in job.groups:
            freed[group] = freed.get(group, 0) + 1
    return freed
