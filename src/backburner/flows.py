"""Chains and groups: jobs that wait for other jobs.

    chain = await app.chain(fetch.call(url), parse.pipe(), store.pipe(table="pages"))
    group = await app.group([resize.call(p) for p in paths], then=summarize.pipe())

Every job of a flow is stored at once, in one insert (all or none), so every id is known and
visible from the start. A job that waits (a chain's later steps, a group's callback) is
stored `scheduled` at `WAITING_RUN_AT` (9999-12-31) with `waiting_on` = the number of jobs it
waits for: no claim and no staging ever takes it. The backend's `complete` of a dependency
decrements that count in the same transaction (Lua script) that records the result, and the
last one makes the waiter `pending`, with the result(s) put first in its positional
arguments when it was made by `task.pipe`: so no step is lost or run twice when a worker dies
between "A completed" and "B enqueued", and the handed-over results are in the store.

If a job ends without completing (failed after its retries, or cancelled), the same
transition cancels its waiting dependents, and theirs, with reason `dependency_failed`.
`app.retry(id)` of the failed (or cancelled) job makes them wait for it again, so the flow
goes on. Ordinary jobs pay nothing: only a claimed job flagged `has_dependents` takes the
backends' flow path.

All jobs of a flow share one queue (on Redis, one hash slot, so one script sees them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from backburner.backends.protocol import NewJob, Receives
from backburner.enqueue import DEFAULT_OPTIONS, build_job, insert_jobs
from backburner.errors import ConfigurationError, JobNotFoundError
from backburner.handle import Job
from backburner.job import JobRecord, JobState
from backburner.task import Call

if TYPE_CHECKING:
    from backburner.app import Backburner


class FlowState(StrEnum):
    """A chain's or group's state, summed up from its jobs' states."""

    PENDING = "pending"
    """Nothing has started yet."""
    RUNNING = "running"
    """Some job started (or finished) and some job is not finished yet."""
    COMPLETED = "completed"
    """Every job completed."""
    FAILED = "failed"
    """Every job is finished and one failed (the ones after it: `dependency_failed`)."""
    CANCELLED = "cancelled"
    """Every job is finished, none failed, and one was cancelled."""


@dataclass(frozen=True, slots=True)
class FlowStatus:
    state: FlowState
    records: list[JobRecord]
    """The flow's jobs, in the handle's order (`Flow.jobs`)."""
    failed: JobRecord | None
    """The first job that failed or was cancelled by itself (not for `dependency_failed`):
    why the flow stopped."""


class Flow:
    """The handle `app.chain` and `app.group` return: every job's id is known at once."""

    def __init__(
        self, app: Backburner, kind: str, jobs: list[Job[Any]], last: Job[Any] | None
    ) -> None:
        self._app = app
        self.kind = kind
        """`"chain"` or `"group"`."""
        self.jobs = jobs
        """A chain's steps in order; a group's members in order, then its callback."""
        self.last = last
        """The job whose result is the flow's: a chain's last step, a group's callback
        (None for a group without one)."""
        self.id = jobs[0].id
        """The flow's id (`JobRecord.flow_id` of each job): its first job's id."""

    def __repr__(self) -> str:
        return f"<Flow {self.kind} {self.id} jobs={len(self.jobs)}>"

    @property
    def members(self) -> list[Job[Any]]:
        """A group's members (a chain's steps)."""
        if self.kind == "group" and self.last is not None:
            return self.jobs[:-1]
        return list(self.jobs)

    async def status(self) -> FlowStatus:
        records = []
        for job in self.jobs:
            record = await self._app.get_job(job.id)
            if record is None:
                raise JobNotFoundError(job.id)
            records.append(record)
        return FlowStatus(flow_state(records), records, _culprit(records))

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the flow and return its result: the last step's (chain), the callback's
        or, without one, the list of the members' results (group). Raises what
        `Job.result` raises (`JobFailedError`, `JobCancelledError`, TimeoutError)."""
        if self.last is not None:
            return await self.last.result(timeout)
        return [await job.result(timeout) for job in self.jobs]

    async def cancel(self) -> None:
        """Cancel every job of the flow that has not finished."""
        for job in self.jobs:
            record = await self._app.get_job(job.id)
            if record is not None and not record.is_terminal:
                await self._app.cancel(job.id)


async def find_flow(app: Backburner, flow_id: str) -> Flow:
    """The handle of a stored chain, or group with a callback, by its id (its first job's),
    found by following the jobs' links: a chain's steps one after the other, a group's
    members from its callback's `depends_on`. The store cannot tell a one-member group with
    a callback from a two-step chain (found as the chain), and a group without a callback
    has no links at all (found as its first member alone): keep `Flow.jobs` for those."""
    first = await app.get_job(flow_id)
    if first is None:
        raise JobNotFoundError(flow_id)
    if first.flow_id != flow_id:
        raise ConfigurationError(f"job {flow_id} does not start a chain or group")
    records = [first]
    kind = "chain"
    while records[-1].dependents:
        following = await app.get_job(records[-1].dependents[0])
        if following is None:
            break  # deleted
        if len(following.depends_on) > 1:
            kind = "group"
            members = [await app.get_job(m) for m in following.depends_on]
            records = [r for r in members if r is not None] + [following]
            break
        records.append(following)
    handles = [Job(app, r.id, app.tasks.get(r.task), r.state) for r in records]
    return Flow(app, kind, handles, handles[-1] if len(handles) > 1 else None)


def flow_state(records: Sequence[JobRecord]) -> FlowState:
    states = [r.state for r in records]
    if all(s is JobState.COMPLETED for s in states):
        return FlowState.COMPLETED
    if all(s.is_terminal for s in states):
        return FlowState.FAILED if JobState.FAILED in states else FlowState.CANCELLED
    if all(r.state in (JobState.PENDING, JobState.SCHEDULED) and r.attempt == 0
           for r in records):
        return FlowState.PENDING
    return FlowState.RUNNING


def _culprit(records: Sequence[JobRecord]) -> JobRecord | None:
    from backburner.job import FailureReason

    for r in records:
        if r.state in (JobState.FAILED, JobState.CANCELLED) and (
            r.reason is not FailureReason.DEPENDENCY_FAILED
        ):
            return r
    return None


def _step_job(app: Backburner, call: Call, what: str, queue: str | None) -> NewJob:
    if not isinstance(call, Call) or call.task is None:
        raise ConfigurationError(
            f"{what} must be a task.call(...) or task.pipe(...), got {type(call).__name__}"
        )
    if call.task.app is not app:
        raise ConfigurationError(f"{what}: task {call.task.name} belongs to another app")
    options = call.options or DEFAULT_OPTIONS
    if options.unique_key is not None or options.unique or options.unique_for is not None:
        raise ConfigurationError(f"{what}: unique jobs cannot be part of a chain or group")
    if options.connection is not None:
        raise ConfigurationError(f"{what}: pass connection= to the chain or group instead")
    if queue is not None:
        options = replace(options, queue=queue)
    return build_job(call.task, options, call.args, call.kwargs, leave_first=call.receives)


def _no_delay(call: Call, what: str) -> None:
    """A job that waits starts when what it follows completes: a delay would be ignored."""
    options = call.options
    if options is not None and (options.delay > 0 or options.at is not None):
        raise ConfigurationError(
            f"{what} waits for other jobs and starts when they complete: delay= and at= "
            "apply only to jobs that wait for nothing"
        )


def _one_queue(jobs: list[NewJob], kind: str) -> None:
    queues = sorted({j.queue for j in jobs})
    if len(queues) > 1:
        raise ConfigurationError(
            f"every job of a {kind} runs in one queue, got {', '.join(map(repr, queues))}: "
            f"pass queue=... to app.{kind}"
        )


def chain_jobs(app: Backburner, calls: Sequence[Call], queue: str | None) -> list[NewJob]:
    """The jobs of a chain, linked: step n + 1 depends on step n."""
    if not calls:
        raise ConfigurationError("a chain needs at least one step")
    jobs = [_step_job(app, c, f"chain step {i}", queue) for i, c in enumerate(calls)]
    if calls[0].receives:
        raise ConfigurationError("the first step of a chain follows nothing: use task.call")
    for i, c in enumerate(calls[1:], 1):
        _no_delay(c, f"chain step {i}")
    _one_queue(jobs, "chain")
    flow_id = jobs[0].id
    linked = []
    for i, job in enumerate(jobs):
        receives: Receives | None = "result" if calls[i].receives else None
        linked.append(
            replace(
                job,
                flow_id=flow_id,
                depends_on=(jobs[i - 1].id,) if i > 0 else (),
                dependents=(jobs[i + 1].id,) if i + 1 < len(jobs) else (),
                receives=receives,
            )
        )
    return linked


def group_jobs(
    app: Backburner, calls: Sequence[Call], then: Call | None, queue: str | None
) -> list[NewJob]:
    """A group's members, then its callback (if any), which depends on every member."""
    if not calls:
        raise ConfigurationError("a group needs at least one member")
    members = [_step_job(app, c, f"group member {i}", queue) for i, c in enumerate(calls)]
    for i, c in enumerate(calls):
        if c.receives:
            raise ConfigurationError(f"group member {i} follows nothing: use task.call")
    flow_id = members[0].id
    if then is None:
        _one_queue(members, "group")
        return [replace(m, flow_id=flow_id) for m in members]
    callback = _step_job(app, then, "the group's callback (then=)", queue)
    _no_delay(then, "the group's callback (then=)")
    _one_queue([*members, callback], "group")
    receives: Receives | None = "results" if then.receives else None
    return [
        *(replace(m, flow_id=flow_id, dependents=(callback.id,)) for m in members),
        replace(
            callback, flow_id=flow_id, depends_on=tuple(m.id for m in members),
            receives=receives,
        ),
    ]


async def insert_flow(
    app: Backburner, kind: str, jobs: list[NewJob], has_last: bool, connection: Any
) -> Flow:
    """Store a flow's jobs in one insert (all or none) and return its handle."""
    handles: list[Job[Any]] = await insert_jobs(app, jobs, connection)
    return Flow(app, kind, handles, handles[-1] if has_last else None)
