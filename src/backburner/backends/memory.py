"""The in-process backend: the reference implementation of the protocol, and the store of
the testing kit. Nothing survives the process; several apps in one process may share one
instance (pass it to `Backburner(backend=...)`).

Every method runs without awaiting in the middle, so each is atomic on the event loop.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from backburner.backends import records
from backburner.backends.attempt_rules import plan_failure
from backburner.backends.flow_rules import (
    CancelWaiting,
    FlowNode,
    MakeReady,
    Plan,
    Read,
    WaitLess,
    dependency_error,
    drive,
    plan_cancel,
    plan_rearm,
    plan_release,
)
from backburner.backends.limit_rules import (
    Group,
    LimitedJob,
    groups_of,
    plan_admission,
    rate_windows,
    slots_freed,
)
from backburner.backends.protocol import (
    Claim,
    ClaimedJob,
    Completion,
    Failure,
    Heartbeat,
    Inserted,
    JobFilter,
    JobPage,
    NewJob,
    QueueState,
    Release,
    ScheduleState,
    Transition,
    WorkerInfo,
)
from backburner.backends.records import error_entry, seq_cursor, stored_json, stored_meta
from backburner.backends.unique_rules import (
    KeyHolder,
    answer_insert,
    keeps_key_on_retry,
)
from backburner.errors import ConfigurationError
from backburner.job import (
    WAITING_RUN_AT,
    AttemptError,
    FailureReason,
    JobRecord,
    JobState,
    Progress,
    timestamp,
)
from backburner.notify import Event, LocalNotifier, Notifier
from backburner.unique import UniqueScope


@dataclass(slots=True)
class _Row:
    seq: int
    id: str
    task: str
    queue: str
    priority: int
    state: JobState
    args: str
    kwargs: str
    max_attempts: int
    timeout: float | None
    created_at: float
    updated_at: float
    run_at: float
    attempt: int = 0
    failures: int = 0
    lost: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    result: str | None = None
    reason: str | None = None
    progress: str | None = None
    worker_id: str | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    unique_key: str | None = None
    unique_scope: UniqueScope = UniqueScope.ACTIVE
    unique_until: float | None = None
    flow_id: str | None = None
    depends_on: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    waiting_on: int = 0
    receives: str | None = None
    limit_concurrency: int | None = None
    limit_key: str | None = None
    limit_key_concurrency: int | None = None
    rate_count: int | None = None
    rate_period: float | None = None
    meta: str | None = None
    parked: Group | None = None
    """The limit group this pending job waits on for a free slot (out of the ready heap)."""

    def limited(self) -> LimitedJob | None:
        """The job as the limit rules read it; None when it has no limits."""
        if (self.limit_concurrency, self.limit_key_concurrency, self.rate_count) == (None,) * 3:
            return None
        return LimitedJob(
            id=self.id, queue=self.queue, task=self.task, priority=self.priority,
            order=self.seq, limit_concurrency=self.limit_concurrency, limit_key=self.limit_key,
            limit_key_concurrency=self.limit_key_concurrency, rate_count=self.rate_count,
            rate_period=self.rate_period,
        )


_WAITING = (JobState.PENDING, JobState.SCHEDULED)


def _key_holder(row: _Row | None) -> KeyHolder | None:
    if row is None:
        return None
    return KeyHolder(row.id, row.state, row.unique_scope, row.attempt, row.unique_until)


class MemoryBackend:
    def __init__(self, url: str = "memory://", clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock
        self._notifier = LocalNotifier()
        self._seq = itertools.count(1)
        self._rows: dict[str, _Row] = {}
        # per queue: heap of (-priority, seq, id); stale entries are skipped lazily.
        # Jobs that lost a worker wait in a heap of their own (see Backend.claim).
        self._ready: dict[str, list[tuple[int, int, str]]] = {}
        self._suspects: dict[str, list[tuple[int, int, str]]] = {}
        self._scheduled: list[tuple[float, int, str]] = []
        self._workers: dict[str, WorkerInfo] = {}
        self._leader: tuple[str, float] | None = None
        # (queue, task, unique key) -> id of the job that took it last; whether that job
        # still holds it is judged when the key is next asked for (unique_rules).
        self._unique: dict[tuple[str, str, str], str] = {}
        self._schedules: dict[str, ScheduleState] = {}
        self._queues: dict[str, QueueState] = {}
        # Limits: ids running per concurrency group, parked jobs per group (a heap like the
        # ready one), and per (queue, task) the start times of the last rate period.
        self._limit_running: dict[Group, set[str]] = {}
        self._parked: dict[Group, list[tuple[int, int, str]]] = {}
        self._starts: dict[tuple[str, str], deque[float]] = {}

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    async def open(self, *, create: bool = True) -> None:
        return None  # the store is this object: it always exists

    async def close(self) -> None:
        await self._notifier.close()

    def for_another_loop(self) -> MemoryBackend:
        # Plain objects and no connection: every loop shares this one store.
        return self

    async def migrate(self) -> list[int]:
        return []

    # -- helpers ---------------------------------------------------------------------------
    def _make_ready(self, row: _Row) -> None:
        row.state = JobState.PENDING
        row.parked = None
        heaps = self._suspects if row.lost else self._ready
        heapq.heappush(heaps.setdefault(row.queue, []), (-row.priority, row.seq, row.id))

    def _pop_ready(self, heap: list[tuple[int, int, str]], suspect: bool) -> _Row | None:
        while heap:
            _, _, job_id = heapq.heappop(heap)
            row = self._rows.get(job_id)
            # Skip stale entries: the job moved on, or changed heap since (retry resets lost).
            if row is not None and row.state is JobState.PENDING and bool(row.lost) == suspect:
                return row
        return None

    def _paused(self, queue: str) -> bool:
        state = self._queues.get(queue)
        return state is not None and state.paused

    def _has_suspect(self, queue: str) -> bool:
        heap = self._suspects.get(queue)
        while heap:
            row = self._rows.get(heap[0][2])
            if row is not None and row.state is JobState.PENDING and row.lost:
                return True
            heapq.heappop(heap)
        return False

    def _schedule(self, row: _Row, run_at: float) -> None:
        row.state = JobState.SCHEDULED
        row.run_at = run_at
        heapq.heappush(self._scheduled, (run_at, row.seq, row.id))

    def _stage_due(self, now: float) -> None:
        while self._scheduled and self._scheduled[0][0] <= now:
            run_at, _, job_id = heapq.heappop(self._scheduled)
            row = self._rows.get(job_id)
            if row and row.state is JobState.SCHEDULED and row.run_at == run_at:
                row.updated_at = now
                self._make_ready(row)

    def _admit(self, row: _Row, now: float) -> bool:
        """Whether a ready job may start now under its limits (backends/limit_rules.py
        decides; then it counts in them). Otherwise it is parked on its full group, or
        scheduled for the rate's next slot."""
        job = row.limited()
        if job is None:
            return True
        # The store counts a claimed job among the running: so do the rules.
        running = {g: len(self._limit_running.get(g, ())) + 1 for g in groups_of([job])}
        starts: dict[tuple[str, str], deque[float]] = {}
        for queue, task, period in rate_windows([job]):
            window = starts[(queue, task)] = self._starts.setdefault((queue, task), deque())
            while window and window[0] <= now - period:
                window.popleft()
        admission = plan_admission([job], running, starts, now)
        for _, kind in admission.parked:
            group = next(g for g, _ in job.groups if g[0] == kind)
            row.parked = group
            heapq.heappush(self._parked.setdefault(group, []), (-row.priority, row.seq, row.id))
            return False
        for _, run_at in admission.delayed:
            self._schedule(row, run_at)
            return False
        for rate_window, n in admission.starts.items():
            starts[rate_window].extend([now] * n)
        for group, _ in job.groups:
            self._limit_running.setdefault(group, set()).add(row.id)
        return True

    def _free(self, row: _Row) -> None:
        """A limited job stopped running: its slots go to the next parked job of each group,
        and the workers of its queue are woken to claim it."""
        job = row.limited()
        if job is None:
            return
        woken = False
        for group in slots_freed([job]):
            running = self._limit_running.get(group)
            if running is not None:
                running.discard(row.id)
                if not running:
                    del self._limit_running[group]
            heap = self._parked.get(group, [])
            while heap:
                _, _, job_id = heapq.heappop(heap)
                waiting = self._rows.get(job_id)
                if waiting and waiting.state is JobState.PENDING and waiting.parked == group:
                    self._make_ready(waiting)
                    woken = True
                    break
            if not heap:
                self._parked.pop(group, None)
        if woken:
            self._notifier.publish([Event("wakeup", row.queue)])

    def _owned(self, job_id: str, attempt: int) -> _Row | None:
        row = self._rows.get(job_id)
        if row and row.state is JobState.RUNNING and row.attempt == attempt:
            return row
        return None

    # -- transitions -----------------------------------------------------------------------
    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        if connection is not None:
            raise ConfigurationError(
                "enqueueing inside the application's transaction needs the PostgreSQL backend"
            )
        now = self.clock()
        for j in jobs:
            if j.id in self._rows:
                raise ConfigurationError(f"duplicate job id {j.id}")
        used: list[Inserted] = []
        for j in jobs:
            if j.unique_key is not None:
                slot = (j.queue, j.task, j.unique_key)
                answer = answer_insert(
                    _key_holder(self._rows.get(self._unique.get(slot, ""))), now
                )
                if answer is not None:
                    used.append(answer)
                    continue
                self._unique[slot] = j.id
            run_at = max(j.run_at or now, now + j.delay)
            row = _Row(
                seq=next(self._seq), id=j.id, task=j.task, queue=j.queue, priority=j.priority,
                state=JobState.PENDING, args=j.args, kwargs=j.kwargs,
                max_attempts=j.max_attempts, timeout=j.timeout, created_at=now,
                updated_at=now, run_at=run_at, unique_key=j.unique_key,
                unique_scope=j.unique_scope,
                unique_until=now + j.unique_for if j.unique_for is not None else None,
                flow_id=j.flow_id, depends_on=j.depends_on, dependents=j.dependents,
                waiting_on=len(j.depends_on), receives=j.receives,
                limit_concurrency=j.limit_concurrency, limit_key=j.limit_key,
                limit_key_concurrency=j.limit_key_concurrency, rate_count=j.rate_count,
                rate_period=j.rate_period, meta=j.meta,
            )
            self._rows[j.id] = row
            used.append(Inserted(j.id))
            if j.depends_on:
                # Waits for its dependencies: in no heap, so nothing stages or claims it.
                row.state, row.run_at = JobState.SCHEDULED, WAITING_RUN_AT
            elif run_at > now:
                self._schedule(row, run_at)
            else:
                self._make_ready(row)
        return used

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        alone: bool = False,
    ) -> Claim:
        now = self.clock()
        self._stage_due(now)
        queues = [q for q in queues if not self._paused(q)]
        if alone:
            for queue in queues:
                heap = self._suspects.get(queue, [])
                while (row := self._pop_ready(heap, suspect=True)) is not None:
                    if self._admit(row, now):
                        return Claim([self._take(row, worker_id, lease, now)], now, None, False)
        jobs: list[ClaimedJob] = []
        for queue in queues:
            heap = self._ready.get(queue, [])
            while len(jobs) < limit:
                row = self._pop_ready(heap, suspect=False)
                if row is None:
                    break
                # A job over its limit leaves the heap (parked or scheduled): the ones
                # behind it are claimed all the same.
                if self._admit(row, now):
                    jobs.append(self._take(row, worker_id, lease, now))
        suspects = any(self._has_suspect(q) for q in queues)
        return Claim(jobs, now, self.next_run_at() if len(jobs) < limit else None, suspects)

    def _take(self, row: _Row, worker_id: str, lease: float, now: float) -> ClaimedJob:
        row.state = JobState.RUNNING
        row.attempt += 1
        row.worker_id = worker_id
        row.lease_until = now + lease
        row.started_at = row.updated_at = now
        row.cancel_requested = False
        row.progress = None  # a new attempt does not show the last one's progress
        return ClaimedJob(
            id=row.id, task=row.task, queue=row.queue, priority=row.priority,
            args=row.args, kwargs=row.kwargs, attempt=row.attempt,
            max_attempts=row.max_attempts, failures=row.failures, lost=row.lost,
            timeout=row.timeout, created_at=row.created_at, run_at=row.run_at,
            started_at=now, has_dependents=bool(row.dependents), meta=row.meta,
        )

    def next_run_at(self) -> float | None:
        """When the earliest scheduled job becomes due (None: none is scheduled)."""
        # Drop stale heap tops (cancelled or re-scheduled jobs) until a live one shows.
        while self._scheduled:
            run_at, _, job_id = self._scheduled[0]
            row = self._rows.get(job_id)
            if row and row.state is JobState.SCHEDULED and row.run_at == run_at:
                return run_at
            heapq.heappop(self._scheduled)
        return None

    async def heartbeat(self, worker_id: str, lease: float) -> Heartbeat:
        now = self.clock()
        owned: dict[str, int] = {}
        cancel: set[str] = set()
        for row in self._rows.values():
            if row.state is JobState.RUNNING and row.worker_id == worker_id:
                row.lease_until = now + lease
                owned[row.id] = row.attempt
                if row.cancel_requested:
                    cancel.add(row.id)
        if worker_id in self._workers:
            self._workers[worker_id] = replace(self._workers[worker_id], heartbeat_at=now)
        return Heartbeat(owned, frozenset(cancel))

    async def update_progress(self, job_id: str, attempt: int, progress: str) -> bool:
        row = self._owned(job_id, attempt)
        if row is None:
            return False
        row.progress = progress
        row.updated_at = self.clock()
        return True

    async def complete(self, items: Sequence[Completion]) -> list[bool]:
        now = self.clock()
        accepted = []
        for item in items:
            row = self._owned(item.id, item.attempt)
            if row is not None:
                row.state = JobState.COMPLETED
                row.result = item.result
                row.finished_at = row.updated_at = now
                row.lease_until = None
                if row.dependents:
                    self._release_dependents(row, now)
                self._free(row)
            accepted.append(row is not None)
        return accepted

    async def fail(self, items: Sequence[Failure]) -> list[bool]:
        now = self.clock()
        accepted = []
        for item in items:
            row = self._owned(item.id, item.attempt)
            if row is not None:
                row.errors.append(error_entry(item.error, item.attempt, item.reason, now))
                end = plan_failure(item, now)
                row.failures += end.failures_added
                row.lease_until = None
                row.updated_at = now
                if end.run_at is not None:
                    row.reason = None
                    row.worker_id = None
                    row.finished_at = None
                    self._schedule(row, end.run_at)
                else:
                    row.state = end.state
                    row.reason = end.reason.value if end.reason else None
                    row.finished_at = now
                    self._cancel_dependents(row, now)
                self._free(row)
            accepted.append(row is not None)
        return accepted

    async def release(self, items: Sequence[Release]) -> list[bool]:
        now = self.clock()
        accepted = []
        for item in items:
            row = self._owned(item.id, item.attempt)
            if row is not None:
                row.worker_id = None
                row.lease_until = None
                row.updated_at = now
                self._make_ready(row)
                self._free(row)
            accepted.append(row is not None)
        return accepted

    async def cancel(self, job_id: str) -> JobState | None:
        row = self._rows.get(job_id)
        if row is None:
            return None
        now = self.clock()
        if row.state in (JobState.PENDING, JobState.SCHEDULED):
            row.state = JobState.CANCELLED
            row.reason = FailureReason.CANCELLED.value
            row.finished_at = row.updated_at = now
            self._cancel_dependents(row, now)
        elif row.state is JobState.RUNNING:
            row.cancel_requested = True
            row.updated_at = now
        return row.state

    async def retry(self, job_id: str) -> JobState | None:
        row = self._rows.get(job_id)
        if row is None:
            return None
        if row.state in (JobState.FAILED, JobState.CANCELLED) and not row.waiting_on:
            now = self.clock()
            row.failures = row.lost = 0
            row.reason = row.result = row.finished_at = row.worker_id = None
            row.cancel_requested = False
            row.run_at = row.updated_at = now
            self._make_ready(row)
            if row.unique_key is not None:
                # Back in scope: it holds its key again unless another live job took it.
                slot = (row.queue, row.task, row.unique_key)
                holder = _key_holder(self._rows.get(self._unique.get(slot, "")))
                if keeps_key_on_retry(row.id, holder, now):
                    self._unique[slot] = row.id
                else:
                    # Runs without it, for good (as the SQL stores clear the column).
                    row.unique_key = None
            self._rearm_dependents(row, now)
        return row.state

    async def delete(self, job_id: str) -> bool:
        row = self._rows.get(job_id)
        if row is None or row.state is JobState.RUNNING:
            return False
        if row.state in _WAITING:
            # What waits for a job that never ran would wait for ever.
            self._cancel_dependents(row, self.clock(), "deleted")
        self._forget(row)
        return True

    def _forget(self, row: _Row) -> None:
        job_id = row.id
        del self._rows[job_id]
        if row.unique_key is not None:
            slot = (row.queue, row.task, row.unique_key)
            if self._unique.get(slot) == job_id:
                del self._unique[slot]

    def _awaited(self, row: _Row) -> bool:
        """Whether a job of a chain or group still waits for `row` (it will read its result,
        or re-arm on its retry): then `row` is kept."""
        for dep_id in row.dependents:
            dep = self._rows.get(dep_id)
            if dep is not None and dep.state is JobState.SCHEDULED and dep.waiting_on > 0:
                return True
        return False

    async def prune(self, older_than: Mapping[JobState, float], limit: int) -> int:
        now = self.clock()
        # Rows are kept in insertion order, roughly the order jobs finish in: the scan
        # stops at `limit`.
        doomed = list(itertools.islice((
            row for row in self._rows.values()
            if row.state in older_than and row.finished_at is not None
            and row.finished_at < now - older_than[row.state]
            # A period key is held until unique_until whatever the state: keep its job.
            and not (row.unique_scope is UniqueScope.PERIOD and row.unique_until is not None
                     and row.unique_until > now)
            and not self._awaited(row)
        ), limit))
        for row in doomed:
            self._forget(row)
        return len(doomed)

    async def rescue_expired(self, max_lost: int) -> list[Transition]:
        now = self.clock()
        moved = []
        for row in list(self._rows.values()):
            if row.state is not JobState.RUNNING or (row.lease_until or now) >= now:
                continue
            row.lost += 1
            message = "the worker holding this attempt stopped renewing its lease"
            if row.lost >= max_lost and not row.cancel_requested:
                message = (f"stopped as a poison job after {row.lost} worker deaths (the "
                           f"max_lost limit, whatever its retries): {message}")
            row.errors.append(
                error_entry({"type": "WorkerLost", "message": message},
                            row.attempt, FailureReason.WORKER_LOST, now)
            )
            row.worker_id = None
            row.lease_until = None
            row.updated_at = now
            if row.cancel_requested:
                row.state, row.reason, row.finished_at = JobState.CANCELLED, "cancelled", now
            elif row.lost >= max_lost:
                row.state, row.reason, row.finished_at = JobState.FAILED, "worker_lost", now
            else:
                self._make_ready(row)
            if row.state.is_terminal:
                self._cancel_dependents(row, now)
            self._free(row)
            reason = FailureReason(row.reason) if row.reason else None
            moved.append(Transition(row.id, row.task, row.queue, row.state, row.attempt, reason))
        return moved

    # -- chains and groups: backburner.backends.flow_rules decides, this applies -----------
    def _release_dependents(self, row: _Row, now: float) -> None:
        self._apply_flow(plan_release(row.id), now)

    def _cancel_dependents(self, row: _Row, now: float, how: str | None = None) -> None:
        """`row` ended without completing (or is deleted: `how`)."""
        self._apply_flow(plan_cancel(row.id, how or row.state.value, row.dependents), now)

    def _rearm_dependents(self, row: _Row, now: float) -> None:
        self._apply_flow(plan_rearm(row.id), now)

    def _flow_nodes(self, wanted: Read) -> dict[str, FlowNode]:
        found = {}
        for job_id in wanted.ids:
            row = self._rows.get(job_id)
            if row is not None:
                found[job_id] = FlowNode(
                    id=row.id, state=row.state, reason=row.reason, waiting_on=row.waiting_on,
                    depends_on=row.depends_on, dependents=row.dependents,
                    receives=row.receives,  # type: ignore[arg-type]
                    args=row.args, result=row.result,
                )
        return found

    def _apply_flow(self, plan: Plan, now: float) -> None:
        for change in drive(plan, self._flow_nodes):
            dep = self._rows[change.id]
            dep.updated_at = now
            if isinstance(change, WaitLess):
                dep.waiting_on = change.waiting_on
            elif isinstance(change, MakeReady):
                dep.waiting_on, dep.args, dep.run_at = 0, change.args, now
                self._make_ready(dep)
            elif isinstance(change, CancelWaiting):
                dep.state = JobState.CANCELLED
                dep.reason = FailureReason.DEPENDENCY_FAILED.value
                dep.errors.append(dependency_error(change.after, change.how, now))
                dep.finished_at = now
            else:
                dep.state, dep.run_at = JobState.SCHEDULED, WAITING_RUN_AT
                dep.waiting_on = change.waiting_on
                dep.reason = dep.finished_at = None

    # -- reads -----------------------------------------------------------------------------
    def _record(self, row: _Row) -> JobRecord:
        progress = stored_json(row.progress, None)
        return JobRecord(
            id=row.id, task=row.task, queue=row.queue, priority=row.priority, state=row.state,
            args=stored_json(row.args, []), kwargs=stored_json(row.kwargs, {}),
            attempt=row.attempt,
            max_attempts=row.max_attempts, failures=row.failures, lost=row.lost,
            timeout=row.timeout,
            errors=tuple(AttemptError.from_json(e) for e in row.errors),
            result=stored_json(row.result, None),
            reason=FailureReason(row.reason) if row.reason else None,
            progress=Progress.from_json(progress),
            worker_id=row.worker_id, cancel_requested=row.cancel_requested,
            created_at=timestamp(row.created_at),  # type: ignore[arg-type]
            updated_at=timestamp(row.updated_at),  # type: ignore[arg-type]
            run_at=timestamp(row.run_at),  # type: ignore[arg-type]
            started_at=timestamp(row.started_at), finished_at=timestamp(row.finished_at),
            lease_until=timestamp(row.lease_until), unique_key=row.unique_key,
            flow_id=row.flow_id, depends_on=row.depends_on, dependents=row.dependents,
            waiting_on=row.waiting_on, meta=stored_meta(row.meta),
        )

    def snapshot(self) -> list[JobRecord]:
        """Every job, oldest first, read without awaiting: the testing kit's assertions
        (`backburner.testing`) work in plain sync tests too."""
        return [self._record(row) for row in sorted(self._rows.values(), key=lambda r: r.seq)]

    async def get(self, job_id: str) -> JobRecord | None:
        row = self._rows.get(job_id)
        return self._record(row) if row else None

    async def list_jobs(
        self, filter: JobFilter, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        below = seq_cursor(cursor)
        window = records.SCAN_WINDOW if filter.scans else None
        found: list[_Row] = []
        last_read: _Row | None = None
        for row in self._walk(filter, below):
            if window is not None:
                if window == 0:
                    # Read as much as a page may: go on from the last job read.
                    return JobPage([self._record(r) for r in found], str(last_read.seq)
                                   if last_read else None)
                window -= 1
                last_read = row
                if not self._scanned_match(filter, row):
                    continue
            found.append(row)
            if len(found) > limit:
                break
        more = len(found) > limit
        found = found[:limit]
        return JobPage(
            [self._record(r) for r in found], str(found[-1].seq) if more and found else None
        )

    def _walk(self, filter: JobFilter, below: int | None) -> Iterator[_Row]:
        """Rows matching the filter's states, task and queue, newest first."""
        for row in sorted(self._rows.values(), key=lambda r: -r.seq):
            if below is not None and row.seq >= below:
                continue
            if filter.states and row.state not in filter.states:
                continue
            if filter.task is not None and row.task != filter.task:
                continue
            if filter.queue is not None and row.queue != filter.queue:
                continue
            yield row

    @staticmethod
    def _scanned_match(filter: JobFilter, row: _Row) -> bool:
        return records.scanned_match(
            filter, row.created_at, (row.args, row.kwargs, row.result), row.errors
        )

    async def count_jobs(self, filter: JobFilter) -> int:
        return sum(
            1 for row in self._walk(filter, None)
            if not filter.scans or self._scanned_match(filter, row)
        )

    async def counts(self) -> dict[tuple[str, JobState], int]:
        # A walk of every row: this store lives in one process for tests and small tools,
        # where that is microseconds; the durable stores keep counts as jobs move.
        result: dict[tuple[str, JobState], int] = {}
        for row in self._rows.values():
            key = (row.queue, row.state)
            result[key] = result.get(key, 0) + 1
        return result

    async def oldest_pending(self) -> dict[str, float]:
        # Exact (the oldest of all ready jobs), by a walk like counts'.
        now = self.clock()
        oldest: dict[str, float] = {}
        for row in self._rows.values():
            if row.state is JobState.PENDING and not row.lost and row.parked is None:
                oldest[row.queue] = min(oldest.get(row.queue, row.run_at), row.run_at)
        return {queue: max(0.0, now - run_at) for queue, run_at in oldest.items()}

    # -- housekeeping leader ---------------------------------------------------------------
    async def lead(self, worker_id: str, ttl: float) -> bool:
        now = self.clock()
        if self._leader is None or self._leader[0] == worker_id or self._leader[1] < now:
            self._leader = (worker_id, now + ttl)
            return True
        return False

    async def resign(self, worker_id: str) -> None:
        if self._leader is not None and self._leader[0] == worker_id:
            self._leader = None

    # -- periodic schedules ----------------------------------------------------------------
    async def now(self) -> float:
        return self.clock()

    async def schedule_states(self) -> dict[str, ScheduleState]:
        return dict(self._schedules)

    async def set_schedule_paused(self, name: str, paused: bool) -> None:
        self._schedules[name] = ScheduleState(paused, self.clock())

    # -- queues ----------------------------------------------------------------------------
    async def set_queue_paused(self, queue: str, paused: bool) -> None:
        self._queues[queue] = QueueState(paused, self.clock())

    async def queue_states(self) -> dict[str, QueueState]:
        return dict(self._queues)

    # -- workers ---------------------------------------------------------------------------
    async def register_worker(self, info: WorkerInfo) -> None:
        now = self.clock()
        self._workers[info.id] = replace(info, started_at=now, heartbeat_at=now)

    async def deregister_worker(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def list_workers(self) -> list[WorkerInfo]:
        return list(self._workers.values())
