"""The seam between Backburner's core and a store, named after job state transitions.

A backend owns atomicity: each method is one atomic change of the store (one transaction,
one Lua script). The core owns policy: whether a failure is retried and after how long,
what a timeout means, when to rescue. Transition methods take batches so a worker can
acknowledge many jobs in one round trip, and answer per item whether the write was accepted:
a write from an attempt that no longer owns its job (lease lost, job re-claimed) is refused.

Time: every timestamp a backend stores or compares comes from the backend's own clock;
the core only passes durations (delays, leases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from backburner.job import FailureReason, JobRecord, JobState
from backburner.names import check_name, check_text
from backburner.notify import Notifier
from backburner.unique import UniqueScope

Receives = Literal["result", "results"]


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    task: str
    queue: str
    priority: int
    args: str
    """JSON array."""
    kwargs: str
    """JSON object."""
    max_attempts: int
    timeout: float | None = None
    delay: float = 0.0
    """Seconds from now, by the backend's clock, before the job may run."""
    run_at: float | None = None
    """Earliest start as epoch seconds; the later of this and `delay` wins."""
    unique_key: str | None = None
    """Store the job only if no live job of the same queue and task holds this key (see
    `backburner.unique`); `insert` then answers the holder's id instead of this one."""
    unique_scope: UniqueScope = UniqueScope.ACTIVE
    unique_for: float | None = None
    """`PERIOD` scope: seconds after the insert, by the backend's clock, the key is held."""
    flow_id: str | None = None
    """Chains and groups (`backburner.flows`): the id of the flow's first job."""
    depends_on: tuple[str, ...] = ()
    """Jobs (of the same insert batch and queue) this one waits for. Non-empty: stored
    `scheduled` at `WAITING_RUN_AT` with `waiting_on = len(depends_on)`, never claimable
    until `complete` of its last dependency makes it `pending`."""
    dependents: tuple[str, ...] = ()
    """Jobs that wait for this one: `complete` releases them, a final `fail`, a `cancel` or
    a rescue that ends this job cancels them (`dependency_failed`), in the same transaction."""
    receives: Receives | None = None
    """What the job gets, as its first positional argument, when it is released: the result
    of its one dependency (`"result"`) or the list of its dependencies' results in
    `depends_on` order (`"results"`). None: nothing."""
    limit_concurrency: int | None = None
    """Most jobs of this (queue, task) running at once (`backburner.limits`)."""
    limit_key: str | None = None
    limit_key_concurrency: int | None = None
    """Most jobs of this (queue, task, limit_key) running at once; set with `limit_key`."""
    rate_count: int | None = None
    rate_period: float | None = None
    """At most `rate_count` jobs of this (queue, task) started per `rate_period` seconds;
    a job over the rate is scheduled again for when the window has room."""
    meta: str | None = None
    """JSON object: what travels with the job but is no argument of its task (the trace
    context, see `backburner.tracing`). Stored, returned by claims and records, never passed
    to the task. None: no meta (nothing stored for it)."""


@dataclass(frozen=True, slots=True)
class Inserted:
    """What `Backend.insert` did with one job."""

    id: str
    """The id used: the job's own, or, when a live job holds its unique key, the holder's
    (then nothing was stored for this one)."""
    holder_state: JobState | None = None
    """The holder's state, when `id` is the holder's."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker now holds a lease on. `attempt` is the fencing token of this claim."""

    id: str
    task: str
    queue: str
    priority: int
    args: str
    kwargs: str
    attempt: int
    max_attempts: int
    failures: int
    lost: int
    timeout: float | None
    created_at: float
    run_at: float
    started_at: float
    has_dependents: bool = False
    """Jobs wait for this one (chains, groups): its outcome goes through the backend's flow
    path (ordinary jobs never pay for it)."""
    meta: str | None = None
    """The job's `NewJob.meta` as stored (None: none)."""
    has_limits: bool | None = None
    """Whether it counts in a concurrency group (`backburner.limits`), when the store says
    so at the claim (None: not said). A hint handed back in its acknowledgement, so a store
    can skip looking for slots to hand on after ordinary jobs."""


@dataclass(frozen=True, slots=True)
class Claim:
    jobs: list[ClaimedJob]
    now: float
    """The backend's clock at the claim."""
    next_run_at: float | None
    """When the earliest scheduled job becomes due (None: nothing scheduled)."""
    suspects_waiting: bool = False
    """Ready jobs that lost a worker wait in these queues for a worker with nothing else
    running (see `Backend.claim`)."""


@dataclass(frozen=True, slots=True)
class Completion:
    id: str
    attempt: int
    result: str
    """JSON."""
    has_dependents: bool = False
    """From `ClaimedJob.has_dependents`: this completion releases waiting jobs."""
    has_limits: bool | None = None
    """From `ClaimedJob.has_limits`; None (unknown) makes the store look."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An attempt that ended badly. With `retry_in` set the job is scheduled again,
    otherwise it ends `failed` (or `cancelled` when `reason` is CANCELLED)."""

    id: str
    attempt: int
    error: dict[str, Any]
    """`{"type", "message", "traceback"}`; the backend adds attempt, reason and time."""
    reason: FailureReason
    retry_in: float | None = None
    counts: bool = True
    """Whether this attempt counts against `max_attempts` (unknown tasks etc. end it anyway)."""
    has_dependents: bool = False
    """From `ClaimedJob.has_dependents`: ending this job cancels waiting jobs."""
    has_limits: bool | None = None
    """From `ClaimedJob.has_limits`; None (unknown) makes the store look."""


@dataclass(frozen=True, slots=True)
class Release:
    """Give a claimed job back untouched (graceful shutdown): pending again at once."""

    id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change the backend made on its own (rescue), reported for events and logs."""

    id: str
    task: str
    queue: str
    state: JobState
    attempt: int
    reason: FailureReason | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    owned: dict[str, int]
    """Job id -> attempt for every job whose lease this worker still holds (now extended)."""
    cancel_requested: frozenset[str]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store keeps of a periodic schedule (its definition lives in code)."""

    paused: bool
    changed_at: float
    """When it was last paused or resumed, by the store's clock: no tick before a resume is
    caught up."""


@dataclass(frozen=True, slots=True)
class QueueState:
    """What the store keeps of a queue's controls (a queue itself needs no record)."""

    paused: bool
    """A paused queue's jobs are stored and wait; no worker claims them."""
    changed_at: float
    """When it was last paused or resumed, by the store's clock."""


TERMINAL_STATES: tuple[JobState, ...] = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
"""The states `Backend.prune` removes jobs from."""


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a listing, a count or a bulk action covers; every field set must match.

    `states`, `task` and `queue` select what the store walks. `search`, `created_after` and
    `created_before` are checked on each job walked, and a page walks at most
    `records.SCAN_WINDOW` jobs for them: a page may then come back short, even empty, with
    a `next_cursor` to go on from (see `JobPage`)."""

    states: tuple[JobState, ...] = ()
    task: str | None = None
    queue: str | None = None
    search: str | None = None
    """Case-insensitive substring of the job's arguments (args and kwargs as stored JSON),
    its result (JSON) or one of its errors' type or message. None or "": no search."""
    created_after: float | None = None
    """Epoch seconds: only jobs created at or after this time."""
    created_before: float | None = None
    """Epoch seconds: only jobs created strictly before this time."""

    def __post_init__(self) -> None:
        # Checked here, not in each store, so every surface and every store refuses the same
        # text (PostgreSQL cannot compare with a NUL at all), with a ConfigurationError.
        if self.queue is not None:
            check_name("queue", self.queue)
        check_text("task", self.task)
        check_text("search", self.search)

    @property
    def scans(self) -> bool:
        """Whether a predicate must be checked job by job (see the class docstring)."""
        return (
            bool(self.search)
            or self.created_after is not None
            or self.created_before is not None
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobRecord]
    """Newest first."""
    next_cursor: str | None
    """Where the next page starts; None at the end. A page may hold fewer jobs than asked
    (even none) and still have a next cursor (a filter that `scans`; a task filter on
    Redis, which no set indexes): keep going until it is None."""


# -- the seam, by role ---------------------------------------------------------------------
# Each protocol below is what one kind of caller needs from a store, so a caller (or a test
# double) can ask for no more than it uses. `Backend` is all of them: a store implements
# `Backend`, and `isinstance(x, Backend)` checks every role at once.


@runtime_checkable
class StoreLifecycle(Protocol):
    """Connecting to a store and keeping its schema current.

    `url` is the URL the store was built from (what `open_backend` was given). Building a
    store never connects; `open` does, and every other method needs it. `notifier` is the
    store's channel of wake-ups and job events (best effort: the store stays the truth)."""

    url: str

    @property
    def notifier(self) -> Notifier: ...

    async def open(self, *, create: bool = True) -> None:
        """Connect and make sure the schema is current. Idempotent. `create=False`: raise
        `StoreNotFoundError` instead of creating a store that does not exist yet (no
        Backburner schema at the URL), for tools that only look at one."""

    async def close(self) -> None: ...

    def for_another_loop(self) -> Backend:
        """A backend on the same store, built the same way and not opened, for another
        event loop: asyncio connections belong to the loop that opened them, and the app
        gives each loop its own (`backburner.loops`). A backend that binds nothing to a
        loop answers itself, and is then shared by every loop."""

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied."""


@runtime_checkable
class JobTransitions(Protocol):
    """Every change of a job's state: what producers, workers and the housekeeping leader do.

    Each method is one atomic change of the store (one transaction, one Lua script); the
    core owns policy (whether a failure is retried and after how long, what a timeout means,
    when to rescue). Transition methods take batches so a worker can acknowledge many jobs
    in one round trip, and answer per item whether the write was accepted: a write from an
    attempt that no longer owns its job (lease lost, job re-claimed) is refused, `attempt`
    being the fencing token. Every timestamp written or compared is the store's clock; the
    core only passes durations (delays, leases)."""

    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        """Store new jobs, `pending` or `scheduled`, all or none; return, per job in order,
        the id actually used: its own, or for a job whose `unique_key` a live job holds, the
        holder's, with its state (nothing is stored for that one). The check and the insert
        are one atomic step, so concurrent inserts of one key store exactly one job. The
        core never sends one key twice in a batch.

        `connection`: the application's own open transaction (a driver connection or an
        SQLAlchemy async session) to insert in, so the jobs exist only if it commits. Backends
        that cannot join a caller's transaction raise ConfigurationError when it is given."""

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        alone: bool = False,
    ) -> Claim:
        """Move up to `limit` due jobs to `running` under a lease, taking `queues` in order
        and, within a queue, higher priority first, then oldest first.

        Suspects (`lost > 0`: a worker died while holding them) are never claimed together
        with other jobs, so one poison job cannot take its neighbours down with it again.
        With `alone=True` (the worker runs nothing else) the first suspect, if any, is
        claimed by itself and nothing else is returned; otherwise only jobs with `lost = 0`
        are claimed. `Claim.suspects_waiting` tells whether suspects are ready in `queues`."""

    async def heartbeat(self, worker_id: str, lease: float) -> Heartbeat:
        """Extend the lease of every job this worker holds and refresh its worker row."""

    async def update_progress(self, job_id: str, attempt: int, progress: str) -> bool: ...

    async def complete(self, items: Sequence[Completion]) -> list[bool]:
        """Record results. A completed job with dependents releases them in the same atomic
        step: each one's `waiting_on` drops by one, and at zero it becomes `pending` with
        what it `receives` put first in its positional arguments."""

    async def fail(self, items: Sequence[Failure]) -> list[bool]:
        """Record failed attempts: retried after `retry_in`, or ended. A job that ends
        (failed or cancelled) cancels its waiting dependents, and theirs, with reason
        `dependency_failed`, in the same atomic step (so do `cancel` and `rescue_expired`)."""

    async def release(self, items: Sequence[Release]) -> list[bool]: ...

    async def cancel(self, job_id: str) -> JobState | None:
        """Cancel a pending/scheduled job now, or ask the worker of a running one to stop.
        Returns the state after the call (`running` means: requested), None if unknown."""

    async def retry(self, job_id: str) -> JobState | None:
        """Put a `failed` or `cancelled` job back to `pending` with a fresh set of attempts.
        Its dependents cancelled with `dependency_failed` wait for it again (and theirs), in
        the same atomic step, unless another of their dependencies failed or was cancelled.
        A job cancelled while it still waited (`waiting_on > 0`) is not retried (its state
        is answered): retry the dependency that failed instead."""

    async def delete(self, job_id: str) -> bool: ...

    async def rescue_expired(self, max_lost: int) -> list[Transition]:
        """Take back jobs whose lease expired: pending again, or failed `worker_lost`
        once they have lost `max_lost` workers."""

    async def prune(self, older_than: Mapping[JobState, float], limit: int) -> int:
        """Delete up to `limit` terminal jobs whose `finished_at` is more than
        `older_than[state]` seconds ago by the store's clock (states absent from the mapping
        are kept), with everything they own (indexes, unique-key entries); return how many.
        A job that still holds a unique key of the period scope (a periodic tick: deleting
        it would free its key, and a late scheduler could enqueue the tick again) is kept
        until the key lapses."""


@runtime_checkable
class JobReads(Protocol):
    """Looking at jobs without changing them: the API, the CLI and the dashboard.

    A read never changes a job; a listing is paged by cursor and stable under concurrent
    inserts (see `list_jobs`)."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def list_jobs(
        self, filter: JobFilter, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        """Jobs matching `filter`, newest first, `limit` at most, from `cursor` (the
        `next_cursor` of the previous page) on. Jobs inserted meanwhile never make a page
        skip or repeat a job."""

    async def count_jobs(self, filter: JobFilter) -> int:
        """How many jobs match `filter` now (exact; a filter that `scans` reads them all)."""

    async def counts(self) -> dict[tuple[str, JobState], int]:
        """Number of jobs per (queue, state)."""


@runtime_checkable
class BacklogReads(Protocol):
    """What metrics read at every scrape of every process, so cheap at any table size: an
    optional role (a store without it shows no oldest-pending age).

    `JobReads.counts` belongs here in spirit: every store keeps it cheap too (counts kept as
    jobs move, not a count of the table; docs/metrics.md says how each store does it)."""

    async def oldest_pending(self) -> dict[str, float]:
        """Per queue with ready jobs: seconds the longest-waiting of them has been ready
        (now - run_at, by the store's clock). Read at the head of each priority level of the
        claim order (a few index seeks), so a job overtaken within its level by a younger
        one (a retry made ready late) may be missed; queues with none ready are absent."""


@runtime_checkable
class QueueControl(Protocol):
    """Pausing and resuming queues for every worker at once.

    The pause lives in the store, not in a worker, so it holds for every worker from its next
    claim; a queue never paused or resumed has no record."""

    async def set_queue_paused(self, queue: str, paused: bool) -> None:
        """Pause or resume a queue for every worker (`changed_at` = now). The claim itself
        skips a paused queue's jobs, so a pause holds from the next claim of any worker;
        inserts into a paused queue still store jobs (they wait)."""

    async def queue_states(self) -> dict[str, QueueState]:
        """Every queue that was ever paused or resumed, by name."""


@runtime_checkable
class ScheduleControl(Protocol):
    """What periodic schedulers share through the store: its clock and the pause of each
    schedule (a schedule's definition lives in code, not in the store).

    Every scheduler compares ticks with `now`, the one clock all workers share, so workers
    whose own clocks are off still agree on which ticks are due."""

    async def now(self) -> float:
        """The store's clock (epoch seconds): what schedulers compare ticks with."""

    async def schedule_states(self) -> dict[str, ScheduleState]:
        """Every schedule that was ever paused or resumed, by name."""

    async def set_schedule_paused(self, name: str, paused: bool) -> None:
        """Pause or resume a schedule for every scheduler (`changed_at` = now)."""


@runtime_checkable
class Leadership(Protocol):
    """One housekeeping leader among the workers of a store, by a lease on the store's clock.

    At most one worker leads at a time; a leader that stops renewing (it died, or lost the
    store) is replaced once its lease runs out, one that resigns at once."""

    async def lead(self, worker_id: str, ttl: float) -> bool:
        """Become, or stay, the one worker that runs housekeeping (rescue of expired leases)
        for the next `ttl` seconds by the store's clock. True while this worker leads; another
        worker takes over once the leader stops renewing."""

    async def resign(self, worker_id: str) -> None:
        """Give up leadership now (graceful shutdown), so another worker takes over at once."""


@runtime_checkable
class WorkerRegistry(Protocol):
    """The workers of a store, for operators (`backburner info`, the dashboard).

    A worker registers when it starts and deregisters when it stops; the store stamps
    `started_at` and `heartbeat_at` with its own clock, and `JobTransitions.heartbeat`
    refreshes the latter. A worker that died without deregistering may stay listed for a
    while (readers judge liveness by `heartbeat_at`): leases, not worker rows, decide who
    owns a job."""

    async def register_worker(self, info: WorkerInfo) -> None: ...

    async def deregister_worker(self, worker_id: str) -> None: ...

    async def list_workers(self) -> list[WorkerInfo]: ...


@runtime_checkable
class Backend(
    StoreLifecycle,
    JobTransitions,
    JobReads,
    QueueControl,
    ScheduleControl,
    Leadership,
    WorkerRegistry,
    Protocol,
):
    """A whole store: every role above. What `open_backend` builds and `Backburner` runs on;
    the promises are those of each role (and the module docstring)."""
