"""`Backburner`: the app object. It owns the task registry and the backend; nothing is global,
so two apps in one process never see each other's tasks or jobs."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from backburner.backends import open_backend
from backburner.backends.protocol import Backend, Inserted, JobFilter, JobPage, NewJob
from backburner.context import JobContext
from backburner.enqueue import UNSET, store_jobs
from backburner.errors import ConfigurationError, JobNotFoundError, TaskNotFoundError
from backburner.flows import Flow, chain_jobs, find_flow, group_jobs, insert_flow
from backburner.group_commit import GroupInsert
from backburner.handle import Job
from backburner.instrument import Change, Instrumentation
from backburner.job import JobRecord, JobState
from backburner.loops import LoopStore, LoopStores
from backburner.names import is_job_id
from backburner.portal import Portal, call_soon
from backburner.queues import QueueInfo, check_queue_name, queue_infos, set_paused
from backburner.retention import Retention
from backburner.retry import Backoff
from backburner.schedule import DEFAULT_CATCH_UP, Schedule, make_schedule
from backburner.task import Call, Task, make_options
from backburner.tracing import JobSpans, NoTracing, Tracing

if TYPE_CHECKING:
    from backburner.bulk import BulkResult
    from backburner.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _epoch(value: float | datetime | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError(f"{name} must be an aware datetime (with a time zone)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be epoch seconds, got {value!r}")
    return float(value)


DEFAULT_URL = "sqlite:///backburner.db"
"""The store of `Backburner()` when neither a URL nor BACKBURNER_URL is given."""


def resolve_url(url: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The URL an app opens: the one given, else BACKBURNER_URL, else `DEFAULT_URL`.

    Read once, when the app is made: a module-level app in a test run started with
    `BACKBURNER_URL=memory://` never touches the production store."""
    if url is not None:
        return url
    value = (os.environ if environ is None else environ).get("BACKBURNER_URL")
    if value is None:
        return DEFAULT_URL
    if not value.strip():
        # Set but empty is a mistake (an unfilled template), not a reason to fall back on a
        # SQLite file in the working directory.
        raise ConfigurationError("BACKBURNER_URL is set but empty: give a store URL or unset it")
    return value


def _open_url(url: str | None) -> Backend:
    resolved = resolve_url(url)
    if url is not None:
        return open_backend(resolved)
    try:
        return open_backend(resolved)
    except ConfigurationError as exc:
        # The value itself is not repeated: it may hold a password.
        raise ConfigurationError(f"BACKBURNER_URL: {exc}") from None


_LIVE_STATES = frozenset(
    s.value for s in (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING)
)
"""States after which a job still has to run: an event naming one is no reason for
`wait_for` to re-read the store."""


class TaskDecorator:
    """What `app.task(...)` with options returns."""

    def __init__(self, app: Backburner, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options

    @overload
    def __call__(
        self, func: Callable[Concatenate[JobContext, P], Coroutine[Any, Any, R]]
    ) -> Task[P, R]: ...
    @overload
    def __call__(self, func: Callable[Concatenate[JobContext, P], R]) -> Task[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Task[P, R]: ...
    def __call__(self, func: Callable[..., Any]) -> Task[Any, Any]:
        return self._app.register_task(func, **self._options)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A periodic schedule as `app.schedules()` reports it."""

    name: str
    task: str
    description: str
    """In words: "At 09:00 every day (Europe/Paris)", "every 1 second"."""
    cron: str | None
    every: float | None
    tz: str
    paused: bool
    next_runs: list[datetime]
    """The next ticks by the store's clock, in the schedule's time zone (even when paused)."""


class Backburner:
    def __init__(
        self,
        url: str | None = None,
        *,
        backend: Backend | None = None,
        poll_interval: float = 2.0,
        tracing: Any = False,
        retention: Retention | None = None,
    ) -> None:
        """`url` picks the store (`sqlite:///path.db`, `memory://`); without one, the
        BACKBURNER_URL environment variable does, else `sqlite:///backburner.db`. Or pass a
        `backend` instance (e.g. one `MemoryBackend` shared by several apps in a test), which
        wins over both.

        `poll_interval`: how often idle workers and result waiters look at the store when no
        notification arrives (a safety net; notifications normally wake them at once).

        `tracing`: True for OpenTelemetry spans around enqueue and execution from the global
        tracer provider, or a `TracerProvider` to use (needs `backburner[otel]`).

        `retention`: how long finished jobs are kept before the workers' housekeeping leader
        prunes them (default `Retention()`: completed 24 h, failed and cancelled 7 days;
        `Retention.forever()` keeps everything). See `backburner.retention`."""
        self._stores = LoopStores(backend if backend is not None else _open_url(url))
        self.url = self._stores.first.url
        if poll_interval <= 0:
            raise ConfigurationError("poll_interval must be > 0")
        self.poll_interval = poll_interval
        if retention is None:
            retention = Retention()
        if not isinstance(retention, Retention):
            raise ConfigurationError(f"retention must be a Retention, not {retention!r}")
        self.retention = retention
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.periodic_schedules: dict[str, Schedule] = {}
        self.instrumentation = Instrumentation(lambda: self.backend.notifier)
        self.tracing: Tracing | None = None
        """OpenTelemetry spans (see `backburner.tracing`), None when off."""
        if tracing is not False and tracing is not None:
            self.tracing = Tracing(None if tracing is True else tracing)
        self.spans: JobSpans = NoTracing()
        """What enqueue and the worker call around each job: `tracing`, or when it is off
        a `NoTracing` whose calls do nothing."""
        if self.tracing is not None:
            self.spans = self.tracing
        self._portal: Portal | None = None
        self._portal_lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        """The store as the running event loop sees it: each loop (a second `asyncio.run`,
        a thread with its own loop, pytest-asyncio's loop per test) has its own connections
        (see `backburner.loops`); outside any loop, the store the app was made with."""
        return self._stores.current().backend

    @property
    def group_insert(self) -> GroupInsert:
        """The running loop's group commit: concurrent plain enqueues share one insert
        (see `backburner.group_commit`)."""
        return self._stores.current().inserts

    @property
    def _opened(self) -> bool:
        return self._stores.current().opened

    def loop_store(self) -> LoopStore:
        """The running loop's store in one lookup (its backend, group commit and whether it
        is open), for hot paths that need more than one of them (`enqueue.insert_one`)."""
        return self._stores.current()

    def __repr__(self) -> str:
        return f"<Backburner {self.url} tasks={len(self.tasks)}>"

    # -- tasks -----------------------------------------------------------------------------
    # A `JobContext` FIRST is left out of the task's parameters (Concatenate), so enqueue
    # type-checks without the mypy plugin; one elsewhere needs `backburner.mypy`.
    @overload
    def task(
        self, func: Callable[Concatenate[JobContext, P], Coroutine[Any, Any, R]], /
    ) -> Task[P, R]: ...
    @overload
    def task(self, func: Callable[Concatenate[JobContext, P], R], /) -> Task[P, R]: ...
    @overload
    def task(self, func: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def task(self, func: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str = ...,
        priority: int = ...,
        retries: int = ...,
        backoff: Backoff | float = ...,
        timeout: float | None = ...,
        retry_on: type[BaseException] | Sequence[type[BaseException]] = ...,
        concurrency: int | None = ...,
        concurrency_per_key: int | None = ...,
        concurrency_key: Callable[..., str] | None = ...,
        rate_limit: str | tuple[int, timedelta | float] | None = ...,
    ) -> TaskDecorator: ...
    def task(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: Any = UNSET,
        priority: Any = UNSET,
        retries: Any = UNSET,
        backoff: Any = UNSET,
        timeout: Any = UNSET,
        retry_on: Any = UNSET,
        concurrency: Any = UNSET,
        concurrency_per_key: Any = UNSET,
        concurrency_key: Any = UNSET,
        rate_limit: Any = UNSET,
    ) -> Task[Any, Any] | TaskDecorator:
        """Register a function as a task: `@app.task` or `@app.task(retries=5, timeout=30)`.

        Global limits (`backburner.limits`), enforced by the store across every worker:
        `concurrency=5` (at most 5 running at once), `concurrency_per_key=2` (per the key
        given with `options(concurrency_key=...)`, or derived by `concurrency_key=`, a
        callable of the task's arguments), `rate_limit="100/m"` (at most 100 started per
        minute; also "10/s", "500/h", or `(count, timedelta)`)."""
        options = {
            "name": name, "queue": queue, "priority": priority, "retries": retries,
            "backoff": backoff, "timeout": timeout, "retry_on": retry_on,
            "concurrency": concurrency, "concurrency_per_key": concurrency_per_key,
            "concurrency_key": concurrency_key, "rate_limit": rate_limit,
        }
        options = {k: v for k, v in options.items() if v is not UNSET}
        if func is None:
            return TaskDecorator(self, options)
        return self.register_task(func, **options)

    def register_task(self, func: Callable[..., Any], /, **options: Any) -> Task[Any, Any]:
        """Register `func` as a task, with `@app.task`'s options by keyword: what the
        decorator does, for code handed functions to run (`register_background`). Prefer
        `@app.task`, which mypy checks and types as `Task[P, R]`."""
        if not callable(func):
            raise ConfigurationError(f"@task needs a function, got {func!r}")
        task_options = make_options(func, **options)
        if task_options.name in self.tasks:
            raise ConfigurationError(f"a task named {task_options.name!r} is already registered")
        task: Task[Any, Any] = Task(self, func, task_options)
        self.tasks[task.name] = task
        return task

    def periodic(
        self,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        name: str | None = None,
        catch_up: float | timedelta = DEFAULT_CATCH_UP,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Callable[[Task[P, R]], Task[P, R]]:
        """Run a task on a schedule, on top of `@app.task`:

            @app.periodic(cron="0 9 * * *", tz="Europe/Paris")
            @app.task
            async def report() -> None: ...

        `cron` (5 fields, in `tz`) or `every` (seconds or timedelta; ticks at multiples of it
        since the Unix epoch). Each tick is enqueued exactly once by the workers' schedulers
        (see `backburner.scheduler`); after downtime, at most the latest missed tick runs,
        if it is within `catch_up` (15 minutes by default). `name` (default: the task's)
        names the schedule for pause/resume/trigger; `args`/`kwargs` are passed to each run.
        """

        def register(task: Task[P, R]) -> Task[P, R]:
            if not isinstance(task, Task) or task.app is not self:
                raise ConfigurationError("@app.periodic goes on top of @app.task of this app")
            schedule = make_schedule(
                task, cron=cron, every=every, tz=tz, name=name, catch_up=catch_up,
                args=args, kwargs=kwargs or {},
            )
            if schedule.name in self.periodic_schedules:
                raise ConfigurationError(f"a schedule named {schedule.name!r} already exists")
            self.periodic_schedules[schedule.name] = schedule
            return task

        return register

    def get_schedule(self, name: str) -> Schedule:
        try:
            return self.periodic_schedules[name]
        except KeyError:
            raise ConfigurationError(f"no schedule named {name!r}") from None

    async def schedules(self, runs: int = 5) -> list[ScheduleInfo]:
        """Every periodic schedule: description, paused or not, the next `runs` ticks."""
        if not self._opened:
            await self.open()
        states = await self.backend.schedule_states()
        now = await self.backend.now()
        found = []
        for s in self.periodic_schedules.values():
            state = states.get(s.name)
            found.append(
                ScheduleInfo(
                    name=s.name, task=s.task.name, description=s.describe(), cron=s.cron,
                    every=s.every, tz=s.tz.key, paused=bool(state and state.paused),
                    next_runs=s.next_runs(now, runs),
                )
            )
        return found

    async def pause_schedule(self, name: str) -> None:
        """No tick of this schedule is enqueued until it is resumed (every scheduler)."""
        self.get_schedule(name)
        if not self._opened:
            await self.open()
        await self.backend.set_schedule_paused(name, True)

    async def resume_schedule(self, name: str) -> None:
        """Ticks run again from now on; none that fell while paused is caught up."""
        self.get_schedule(name)
        if not self._opened:
            await self.open()
        await self.backend.set_schedule_paused(name, False)

    async def trigger_schedule(self, name: str) -> Job[Any]:
        """Run the schedule's task now, once, outside its ticks (paused or not)."""
        schedule = self.get_schedule(name)
        return await schedule.task.enqueue(*schedule.args, **schedule.kwargs)

    # -- queues ----------------------------------------------------------------------------
    async def pause_queue(self, name: str) -> None:
        """No worker claims this queue's jobs until it is resumed (running ones finish);
        enqueueing into it still stores jobs, which wait."""
        await set_paused(self, name, True)

    async def resume_queue(self, name: str) -> None:
        """Workers claim this queue's jobs again, woken at once."""
        await set_paused(self, name, False)

    async def queues(self) -> list[QueueInfo]:
        """Every queue that holds jobs or was ever paused: paused or not, jobs per state."""
        return await queue_infos(self)

    async def queue(self, name: str) -> QueueInfo:
        """One queue (zero counts and not paused if the store knows nothing of it)."""
        [info] = await queue_infos(self, only=name)
        return info

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise TaskNotFoundError(name) from None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect to the store (and apply migrations). Called on first use if needed."""
        store = self._stores.current()
        if not store.opened:
            await self._stores.opened(store)

    async def close(self) -> None:
        """Close this event loop's connections (each loop's close by themselves when the
        loop ends) and stop the sync API's portal thread if it runs."""
        portal, self._portal = self._portal, None
        if portal is not None:
            await asyncio.to_thread(portal.stop)
        await self._stores.close_current()

    # -- for sync code -----------------------------------------------------------------------
    def run_sync(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine `make()` returns for sync code and block until it is done: on
        the event loop this app's web server runs, when called from one of that server's
        worker threads (a FastAPI `def` endpoint), else on the app's portal, a private loop
        on a daemon thread (Django, Flask, scripts, notebooks). Safe from any thread; what
        `enqueue_sync` and the handle's `*_sync` methods use. See `backburner.portal`."""
        return call_soon(make, self._stores.home_loop(), self._sync_portal)

    def _sync_portal(self) -> Portal:
        with self._portal_lock:
            if self._portal is None:
                self._portal = Portal(f"backburner-portal-{self._stores.first.url.split(':')[0]}")
            return self._portal

    def get_job_sync(self, job_id: str) -> JobRecord | None:
        """`get_job` for sync code."""
        return self.run_sync(lambda: self.get_job(job_id))

    def cancel_sync(self, job_id: str) -> JobState:
        """`cancel` for sync code."""
        return self.run_sync(lambda: self.cancel(job_id))

    def retry_sync(self, job_id: str) -> JobState:
        """`retry` for sync code."""
        return self.run_sync(lambda: self.retry(job_id))

    def close_sync(self) -> None:
        """Close the connections the sync API opened (the portal's) and stop its thread.
        Optional: the thread is a daemon and every call was acknowledged; for a clean
        goodbye to the server at a script's end, or in a Flask/Django shutdown hook."""
        portal, self._portal = self._portal, None
        if portal is not None:
            portal.stop()

    @contextlib.contextmanager
    def using_backend(self, backend: Backend) -> Iterator[Backend]:
        """Point this app at `backend` inside the block, and back at its own store after it,
        as it was (open or not): how `backburner.testing.memory_store` runs one test of a
        module-level app on a fresh in-memory store. Workers made inside the block use
        `backend`; neither store is opened or closed here. Not for a live app: calls
        already under way keep the store they started on."""
        saved = (self._stores, self.url, self._portal)
        self._stores, self.url, self._portal = LoopStores(backend), backend.url, None
        try:
            yield backend
        finally:
            portal = self._portal
            self._stores, self.url, self._portal = saved
            if portal is not None:
                portal.stop()

    async def __aenter__(self) -> Backburner:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- flows -----------------------------------------------------------------------------
    async def chain(
        self, *steps: Call, queue: str | None = None, connection: Any = None
    ) -> Flow:
        """Store a chain: each step runs once the one before it completed; a step that fails
        for good (after its retries) or is cancelled cancels the steps after it (reason
        `dependency_failed`). A step made with `task.pipe(...)` receives the previous step's
        result as its first positional argument. Every job is stored at once (all or none)
        and returned in the handle, so every id is known now. All steps run in one queue
        (`queue`, or the tasks' own, which must then agree). See `backburner.flows`."""
        if queue is not None:
            check_queue_name(queue)
        jobs = chain_jobs(self, steps, queue)
        return await insert_flow(self, "chain", jobs, True, connection)

    async def group(
        self,
        members: Sequence[Call],
        *,
        then: Call | None = None,
        queue: str | None = None,
        connection: Any = None,
    ) -> Flow:
        """Store a group: the members run in parallel; `then` (a callback) runs once after
        all of them completed, and, made with `task.pipe(...)`, receives the list of their
        results in member order as its first positional argument. A member that fails for
        good or is cancelled cancels the callback (reason `dependency_failed`); the other
        members still run. All jobs are stored at once, in one queue. See `backburner.flows`."""
        if queue is not None:
            check_queue_name(queue)
        jobs = group_jobs(self, list(members), then, queue)
        return await insert_flow(self, "group", jobs, then is not None, connection)

    async def get_flow(self, flow_id: str) -> Flow:
        """The handle of a stored chain or group (with a callback) by its id, the id of its
        first job (`Flow.id`, `JobRecord.flow_id`). See `backburner.flows.find_flow`."""
        return await find_flow(self, flow_id)

    # -- jobs ------------------------------------------------------------------------------
    # Lookups and actions by id follow one rule: `job(id)` makes a handle without reading
    # the store (nothing is checked); `get_job(id)` reads the record now and answers None
    # when there is no such job; acting on a job (`cancel`, `retry`, `wait_for`, and the
    # handle's `info`, `status`, `wait`, `result`, `cancel`, `retry`) raises
    # JobNotFoundError when there is none; `delete` answers whether it deleted one. An id
    # that can name no job (see `backburner.names`) is never sent to the store, and is
    # answered like a job that is not there.
    def job(self, job_id: str) -> Job[Any]:
        """A handle on the job with this id, made without reading the store: the job may
        not exist, and the handle's `task_name` is None and its `initial_state` `pending`,
        since neither was read. Its methods read or act when called (`info()` for the
        record; JobNotFoundError if there is no such job). For a lookup that answers None
        instead, use `get_job`."""
        return Job(self, job_id)

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job's record as stored now, or None when there is no such job (also for an
        id that can name no job, which is never sent to the store). `Job.info()` is the
        same read, raising JobNotFoundError instead of answering None."""
        if not is_job_id(job_id):
            return None  # names no job; never sent to a store (see backburner.names)
        if not self._opened:
            await self.open()
        return await self.backend.get(job_id)

    async def _store(self, jobs: list[NewJob], connection: Any) -> list[Inserted]:
        # Kept for tests/stores/test_redis_backend.py, which stores a job without the enqueue
        # events; the package stores through `backburner.enqueue`.
        return await store_jobs(self.backend, jobs, connection)

    def job_filter(
        self,
        *,
        states: Sequence[JobState | str] = (),
        task: str | None = None,
        queue: str | None = None,
        search: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
    ) -> JobFilter:
        """A checked `JobFilter` (ConfigurationError naming a bad value): states by name,
        times as epoch seconds or aware datetimes."""
        try:
            wanted = tuple(JobState(s) for s in states)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return JobFilter(
            wanted, task, queue, search or None,
            _epoch(created_after, "created_after"), _epoch(created_before, "created_before"),
        )

    async def list_jobs(
        self,
        *,
        states: Sequence[JobState | str] = (),
        task: str | None = None,
        queue: str | None = None,
        search: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        filter: JobFilter | None = None,
    ) -> JobPage:
        """One page of jobs, newest first (see `JobFilter` for the filters and `JobPage` for
        paging: go on with `cursor=page.next_cursor` until it is None). `filter` replaces
        the keyword filters."""
        if not self._opened:
            await self.open()
        if not 1 <= limit <= 1000:
            raise ConfigurationError("limit must be between 1 and 1000")
        if filter is None:
            filter = self.job_filter(
                states=states, task=task, queue=queue, search=search,
                created_after=created_after, created_before=created_before,
            )
        return await self.backend.list_jobs(filter, limit, cursor)

    async def count_jobs(
        self,
        filter: JobFilter | None = None,
        *,
        states: Sequence[JobState | str] = (),
        task: str | None = None,
        queue: str | None = None,
        search: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
    ) -> int:
        """How many jobs match now, exactly: `filter`, or the keyword filters (as for
        `job_filter`, which checks them). `filter` replaces the keyword filters."""
        if not self._opened:
            await self.open()
        if filter is None:
            filter = self.job_filter(
                states=states, task=task, queue=queue, search=search,
                created_after=created_after, created_before=created_before,
            )
        return await self.backend.count_jobs(filter)

    async def bulk(
        self, filter: JobFilter, action: Literal["retry", "cancel", "delete"], *,
        limit: int | None = None,
    ) -> BulkResult:
        """`backburner.bulk.apply(self, ...)`: one action on every job matching `filter`."""
        from backburner import bulk

        return await bulk.apply(self, filter, action, limit=limit)

    async def cancel(self, job_id: str) -> JobState:
        """Cancel a waiting job at once; ask the worker of a running one to stop it.
        Returns the state after the call (`running` means the request is on its way)."""
        if not is_job_id(job_id):
            raise JobNotFoundError(job_id)
        if not self._opened:
            await self.open()
        state = await self.backend.cancel(job_id)
        if state is None:
            raise JobNotFoundError(job_id)
        record = await self.backend.get(job_id)
        if state is JobState.RUNNING:
            self.instrumentation.cancel_requested(job_id, record.queue if record else "default")
        if record is not None:
            self.instrumentation.changed(
                [Change(job_id, record.task, record.queue, record.state.value, record.attempt,
                        {"cancel_requested": True} if state is JobState.RUNNING else None)]
            )
        return state

    async def retry(self, job_id: str) -> JobState:
        """Run a `failed` or `cancelled` job again with a fresh set of attempts."""
        if not is_job_id(job_id):
            raise JobNotFoundError(job_id)
        if not self._opened:
            await self.open()
        state = await self.backend.retry(job_id)
        if state is None:
            raise JobNotFoundError(job_id)
        record = await self.backend.get(job_id)
        if record is not None and state is JobState.PENDING:
            self.instrumentation.enqueued(
                [record.queue],
                [Change(job_id, record.task, record.queue, state.value, record.attempt)],
            )
        return state

    async def delete(self, job_id: str) -> bool:
        """Delete a job that is not running: True if it was deleted, False if there is no
        such job or it is running."""
        if not is_job_id(job_id):
            return False
        if not self._opened:
            await self.open()
        return await self.backend.delete(job_id)

    async def wait_for(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Wait until the job is terminal. Raises JobNotFoundError, TimeoutError."""
        if not is_job_id(job_id):
            raise JobNotFoundError(job_id)
        if not self._opened:
            await self.open()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.backend.notifier.subscribe(["job"], job_id=job_id, maxsize=64) as sub:
            while True:
                record = await self.backend.get(job_id)
                if record is None:
                    raise JobNotFoundError(job_id)
                if record.is_terminal:
                    return record
                wait = self.poll_interval
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"job {job_id} is still {record.state.value}")
                    wait = min(wait, remaining)
                # Re-read the store only when the job may have finished: a terminal state
                # (or a state this loop does not know) arrived, or events were lost. Not for
                # progress, nor for a move between live states (claimed, retried): that
                # read would cost a round trip while the job runs and delay the next one.
                while True:
                    started = time.monotonic()
                    if not await sub.wait(wait):
                        break
                    events = sub.drain()
                    if sub.overflowed or any(
                        e.progress is None and e.state not in _LIVE_STATES for e in events
                    ):
                        sub.overflowed = False
                        break
                    wait = max(0.0, wait - (time.monotonic() - started))

    # -- workers ---------------------------------------------------------------------------
    def worker(self, **options: Any) -> Worker:
        """A worker bound to this app; see `Worker` for the options."""
        from backburner.worker import Worker

        return Worker(self, **options)

    async def run_worker(self, **options: Any) -> None:
        """Run a worker until it is stopped (SIGTERM/SIGINT when run from the main thread) or,
        with `burst=True`, until no job is ready. Options as for `Worker`."""
        worker = self.worker(**options)
        await worker.run()
