"""The one way a job is made and stored.

Every way in (`task.enqueue`, `enqueue_many`, `task.options(...).enqueue`, the scheduler's
ticks, `app.chain` / `app.group`, `DurableBackgroundTasks`) turns a task, its enqueue options
and its arguments into a `NewJob` with `build_job`, and stores a batch of them with
`insert_jobs`: so the argument check, unique keys, limits, tracing and the enqueue events are
the same whichever way a job comes in, and each batch is one store insert.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from backburner import codec
from backburner.backends.protocol import Backend, Inserted, NewJob
from backburner.group_commit import shareable
from backburner.handle import Job
from backburner.ids import new_job_id
from backburner.instrument import Change
from backburner.job import JobState
from backburner.limits import check_key as check_limit_key
from backburner.tracing import NoTracing
from backburner.unique import UniqueScope, derived_key

if TYPE_CHECKING:
    from backburner.app import Backburner
    from backburner.task import Task

R = TypeVar("R")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Sentinel for "keep the task's default", distinct from None (which may mean "no timeout")."""


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """The options of one enqueue (`task.options(...)`, checked there); the defaults keep
    the task's own."""

    delay: float = 0.0
    at: datetime | None = None
    priority: int | None = None
    queue: str | None = None
    retries: int | None = None
    timeout: float | None = UNSET
    connection: Any = None
    unique_key: str | None = None
    unique: bool = False
    """Derive the key from the arguments (see `backburner.unique.derived_key`)."""
    unique_scope: UniqueScope = UniqueScope.ACTIVE
    unique_for: float | None = None
    concurrency_key: str | None = None


DEFAULT_OPTIONS = EnqueueOptions()
"""A plain `task.enqueue(...)`: every option the task's default."""


def build_job(
    task: Task[Any, Any],
    options: EnqueueOptions,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    leave_first: bool = False,
) -> NewJob:
    """The job that calls `task(*args, **kwargs)` with these options, not stored yet. The
    arguments are checked and encoded now (InvalidArgumentsError), so a bad call fails the
    caller. `leave_first`: the first positional argument is filled in when the job runs (a
    `task.pipe` step of a flow)."""
    json_args, json_kwargs = task.signature.encode(args, kwargs, leave_first=leave_first)
    defaults = task.defaults
    if options is DEFAULT_OPTIONS and defaults.concurrency_key is None:
        # A plain `task.enqueue`: every field is the task's, or NewJob's own default (no
        # delay, time, unique key or concurrency key), with no option to look at.
        rate = defaults.rate_limit
        return NewJob(
            id=new_job_id(),
            task=defaults.name,
            queue=defaults.queue,
            priority=defaults.priority,
            args=codec.dumps(json_args) if json_args else "[]",
            kwargs=codec.dumps(json_kwargs) if json_kwargs else "{}",
            max_attempts=1 + defaults.retries,
            timeout=defaults.timeout,
            limit_concurrency=defaults.concurrency,
            rate_count=rate.count if rate is not None else None,
            rate_period=rate.period if rate is not None else None,
        )
    retries = options.retries if options.retries is not None else defaults.retries
    timeout = defaults.timeout if options.timeout is UNSET else options.timeout
    key = options.unique_key
    if key is None and (options.unique or options.unique_for is not None):
        key = derived_key(json_args, json_kwargs)
    limit_key = options.concurrency_key
    if limit_key is None and defaults.concurrency_key is not None:
        limit_key = check_limit_key(task.name, defaults.concurrency_key(*args, **kwargs))
    rate = defaults.rate_limit
    return NewJob(
        id=new_job_id(),
        task=defaults.name,
        queue=options.queue or defaults.queue,
        priority=options.priority if options.priority is not None else defaults.priority,
        # Most tasks take no positional-only argument: their "[]" needs no encoder call.
        args=codec.dumps(json_args) if json_args else "[]",
        kwargs=codec.dumps(json_kwargs) if json_kwargs else "{}",
        max_attempts=1 + retries,
        timeout=timeout,
        delay=options.delay,
        run_at=options.at.timestamp() if options.at is not None else None,
        unique_key=key,
        unique_scope=options.unique_scope,
        unique_for=options.unique_for,
        limit_concurrency=defaults.concurrency,
        limit_key=limit_key if defaults.concurrency_per_key is not None else None,
        limit_key_concurrency=defaults.concurrency_per_key if limit_key is not None else None,
        rate_count=rate.count if rate is not None else None,
        rate_period=rate.period if rate is not None else None,
    )


async def insert_jobs(
    app: Backburner,
    jobs: Sequence[NewJob],
    connection: Any = None,
    *,
    task: Task[Any, R] | None = None,
) -> list[Job[R]]:
    """Store `jobs` in one insert (all or none; in `connection`, the application's open
    transaction, when given) and return their handles in order. A job whose unique key a
    live job holds is not stored: its handle is the holder's (`duplicate`). `task`: the task
    of every job (one task's enqueue); without it each handle gets the task its job names
    (a flow mixes tasks)."""
    if not jobs:
        return []
    if len(jobs) == 1 and isinstance(app.spans, NoTracing):
        # One job (`DurableBackgroundTasks.add_task`, a one-item `enqueue_many`).
        return [await insert_one(app, jobs[0], connection, task=task)]
    return await _insert_batch(app, jobs, connection, task)


async def _insert_batch(
    app: Backburner, jobs: Sequence[NewJob], connection: Any, task: Task[Any, R] | None
) -> list[Job[R]]:
    await app.open()
    # One key twice in a batch: the later ones are duplicates of the first, so the
    # backends only ever judge a key against what is already stored.
    first: dict[tuple[str, str, str], str] = {}
    same_as: dict[str, str] = {}
    sent = []
    for job in jobs:
        if job.unique_key is not None:
            slot = (job.queue, job.task, job.unique_key)
            if slot in first:
                same_as[job.id] = first[slot]
                continue
            first[slot] = job.id
        sent.append(job)
    with app.spans.enqueue(sent) as stored:
        if connection is None and shareable(stored):
            used = await app.group_insert.insert(stored)
        else:
            used = await store_jobs(app.backend, stored, connection)
    actual = {job.id: done.id for job, done in zip(sent, used, strict=True)}
    # A holder's state as the store saw it (it may be uncommitted, with `connection=`).
    held = {done.id: done.holder_state for done in used if done.holder_state is not None}
    now = time.time()
    handles: list[Job[R]] = []
    changes = []
    for job in jobs:
        job_id = actual[same_as.get(job.id, job.id)]
        state = initial_state(job, now)
        job_task = task if task is not None else app.tasks.get(job.task)
        if job_id != job.id:
            # Held by a job stored before, or by an earlier one of this batch.
            handles.append(Job(app, job_id, job_task, held.get(job_id, state), duplicate=True))
            continue
        handles.append(Job(app, job.id, job_task, state))
        changes.append(Change(job.id, job.task, job.queue, state.value, 0))
    if changes:
        app.instrumentation.enqueued((c.queue for c in changes), changes)
    return handles


async def insert_one(
    app: Backburner, job: NewJob, connection: Any = None, *, task: Task[Any, R] | None = None
) -> Job[R]:
    """`insert_jobs` of one job (`task.enqueue`), with the same result, events and errors,
    for less: the running loop's store looked up once (not per property: backend, group
    commit, notifier), no coroutine to open a store that is open, none of a batch's
    bookkeeping (one job cannot repeat a key of its own batch). Tracing on: the batch's
    way, whose spans may change the jobs stored."""
    if not isinstance(app.spans, NoTracing):
        (handle,) = await _insert_batch(app, [job], connection, task)
        return handle
    store = app.loop_store()
    if not store.opened:
        await app.open()
        store = app.loop_store()
    jobs = [job]
    if connection is None and job.unique_key is None and job.flow_id is None:
        used = await store.inserts.insert(jobs)
    else:
        used = await store_jobs(store.backend, jobs, connection)
    (done,) = used
    state = initial_state(job, time.time())
    job_task = task if task is not None else app.tasks.get(job.task)
    if done.id != job.id:
        # Held by a job stored before; its state as the store saw it (maybe uncommitted).
        held = done.holder_state
        return Job(app, done.id, job_task, held if held is not None else state, duplicate=True)
    # The store closed meanwhile (`app.close()` during the insert): the running loop's
    # notifier is another, as `insert_jobs` would find it.
    notifier = store.backend.notifier if store.opened else app.backend.notifier
    app.instrumentation.enqueued_one(notifier, job.id, job.task, job.queue, _TEXT[state])
    return Job(app, job.id, job_task, state)


_TEXT = {state: state.value for state in JobState}
"""`state.value` without the enum's descriptor call."""


def initial_state(job: NewJob, now: float) -> JobState:
    """The state a new job is stored in: `scheduled` while it waits (for a delay, a time,
    or the jobs of its flow it depends on), else `pending`."""
    waits = job.depends_on or job.delay > 0 or (job.run_at is not None and job.run_at > now)
    return JobState.SCHEDULED if waits else JobState.PENDING


async def store_jobs(
    backend: Backend, jobs: Sequence[NewJob], connection: Any = None
) -> list[Inserted]:
    """`backend.insert`, passing `connection` only when there is one."""
    if connection is None:
        return await backend.insert(jobs)
    return await backend.insert(jobs, connection)
