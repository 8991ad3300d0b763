"""Tasks: typed functions that can be enqueued as durable jobs.

`Task[P, R]` keeps the function's parameters `P` and result `R`, so `task.enqueue(...)` is
checked by mypy against the function's signature, a `JobContext` parameter left out of it
(when first, by `@app.task`'s `Concatenate` overloads; elsewhere, by the `backburner.mypy`
plugin), and `await job.result()` has type `R`.
Options that are not task arguments go through `task.options(...)`, so they can never clash
with a parameter's name.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from backburner.backends.protocol import NewJob
from backburner.caller_connection import pinned
from backburner.enqueue import (
    DEFAULT_OPTIONS,
    UNSET,
    EnqueueOptions,
    build_job,
    insert_jobs,
    insert_one,
)
from backburner.errors import ConfigurationError, InvalidArgumentsError
from backburner.limits import RateLimit, check_concurrency, parse_rate_limit
from backburner.limits import check_key as check_limit_key
from backburner.names import check_name
from backburner.retry import Backoff, as_backoff
from backburner.signature import TaskSignature
from backburner.unique import UniqueScope, check_key, check_scope

if TYPE_CHECKING:
    from backburner.app import Backburner
    from backburner.handle import Job

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    name: str
    queue: str = "default"
    priority: int = 0
    """Higher runs first within a queue."""
    retries: int = 3
    """Attempts after the first that a failure may use. 0: never retried."""
    backoff: Backoff = field(default_factory=Backoff)
    timeout: float | None = None
    """Seconds an attempt may run; None: no limit."""
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    """Exceptions that are retried; any other ends the job at once."""
    concurrency: int | None = None
    """Most jobs of this task (in its queue) running at once, over all workers (limits.py)."""
    concurrency_per_key: int | None = None
    """Most jobs running at once per concurrency key (`options(concurrency_key=...)`)."""
    concurrency_key: Callable[..., str] | None = None
    """Derives a job's concurrency key from the task's arguments, when not given."""
    rate_limit: RateLimit | None = None
    """Most jobs of this task started per period; the rest wait (never fail)."""

    def __post_init__(self) -> None:
        _check_options(self.name, self.queue, self.priority, self.retries, self.timeout)
        check_concurrency(self.name, "concurrency", self.concurrency)
        check_concurrency(self.name, "concurrency_per_key", self.concurrency_per_key)
        if self.concurrency_key is not None:
            if not callable(self.concurrency_key):
                raise ConfigurationError(
                    f"{self.name}: concurrency_key must be a callable of the task's arguments"
                )
            if self.concurrency_per_key is None:
                raise ConfigurationError(
                    f"{self.name}: concurrency_key= needs concurrency_per_key="
                )


def _check_options(
    name: str, queue: str, priority: int, retries: int, timeout: float | None
) -> None:
    try:
        check_name("queue", queue)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigurationError(f"{name}: priority must be an int")
    if not -(2**31) <= priority < 2**31:
        raise ConfigurationError(f"{name}: priority must fit in 32 bits")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10_000:
        raise ConfigurationError(f"{name}: retries must be an int between 0 and 10000")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(f"{name}: timeout must be a positive number of seconds or None")


@dataclass(frozen=True, slots=True)
class Call:
    """One set of arguments for a task, made by `task.call(...)` (type-checked): an item of
    `enqueue_many`, or a step of `app.chain` / `app.group`. `task.pipe(...)` makes one whose
    first positional argument is filled in when it runs (see `backburner.flows`)."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    task: Task[Any, Any] | None = None
    """The task to call (set by `task.call`/`task.pipe`; `enqueue_many` knows it anyway)."""
    receives: bool = False
    """Made by `task.pipe`: the first positional argument is what the job follows gives."""
    options: EnqueueOptions | None = None
    """Per-call options (`task.options(...).call(...)`); None: the task's defaults."""


class Task(Generic[P, R]):
    def __init__(self, app: Backburner, func: Callable[..., Any], options: TaskOptions) -> None:
        self.app = app
        self.func = func
        self.defaults = options
        self.is_async = inspect.iscoroutinefunction(func)
        self.signature = TaskSignature(func, options.name)
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", options.name)
        self.__wrapped__ = func

    @property
    def name(self) -> str:
        return self.defaults.name

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.defaults.queue}>"

    def options(
        self,
        *,
        delay: float | timedelta = 0.0,
        at: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        retries: int | None = None,
        timeout: float | None = UNSET,
        connection: Any = None,
        unique_key: str | None = None,
        unique: bool = False,
        unique_scope: UniqueScope | str = UniqueScope.ACTIVE,
        unique_for: float | timedelta | None = None,
        concurrency_key: str | None = None,
    ) -> BoundTask[P, R]:
        """Per-enqueue options: `delay` (seconds or timedelta) or `at` (aware datetime),
        `priority`, `queue`, `retries`, `timeout` (None: no limit), and `connection`: the
        application's open transaction to enqueue in (PostgreSQL), so the job exists only if
        that transaction commits.

        Unique jobs: `unique_key="order-42"` (or `unique=True` for a key derived from the
        arguments) stores the job only if no live job of this task and queue holds the key;
        otherwise the enqueue returns the holder's handle (`job.duplicate` is True). Live
        means, by `unique_scope`: `"active"` (default) until the holder ends, `"queued"`
        until it starts; or, with `unique_for` (seconds or timedelta), for that long after
        the holder's enqueue whatever its state. See `backburner.unique`.

        `concurrency_key="customer:42"`: the key whose `concurrency_per_key` limit this job
        counts against (see `backburner.limits`)."""
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not (
            math.isfinite(delay) and delay >= 0
        ):
            raise ConfigurationError(f"{self.name}: delay must be a finite number >= 0")
        if at is not None and (not isinstance(at, datetime) or at.tzinfo is None):
            raise ConfigurationError(f"{self.name}: `at` must be a timezone-aware datetime")
        _check_options(
            self.name,
            queue if queue is not None else self.defaults.queue,
            priority if priority is not None else self.defaults.priority,
            retries if retries is not None else self.defaults.retries,
            None if timeout is UNSET else timeout,
        )
        if unique_key is not None:
            check_key(self.name, unique_key)
            if unique:
                raise ConfigurationError(f"{self.name}: give unique_key= or unique=True, not both")
        scope = check_scope(self.name, unique_scope)
        if isinstance(unique_for, timedelta):
            unique_for = unique_for.total_seconds()
        if unique_for is not None:
            if isinstance(unique_for, bool) or not isinstance(unique_for, (int, float)) or not (
                math.isfinite(unique_for) and unique_for > 0
            ):
                raise ConfigurationError(f"{self.name}: unique_for must be a positive duration")
            if scope is not UniqueScope.ACTIVE:
                raise ConfigurationError(
                    f"{self.name}: unique_for= is a scope of its own; drop unique_scope="
                )
            scope, unique_for = UniqueScope.PERIOD, float(unique_for)
        if concurrency_key is not None:
            check_limit_key(self.name, concurrency_key)
            if self.defaults.concurrency_per_key is None:
                raise ConfigurationError(
                    f"{self.name}: concurrency_key= needs the task's concurrency_per_key="
                )
        return BoundTask(
            self,
            EnqueueOptions(
                float(delay), at, priority, queue, retries, timeout, connection,
                unique_key, bool(unique), scope, unique_for, concurrency_key,
            ),
        )

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Store a job that calls this task with these arguments; returns its handle once it
        is durable."""
        return await insert_one(self.app, build_job(self, DEFAULT_OPTIONS, args, kwargs), task=self)

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """`enqueue` for sync code (Django and Flask views, FastAPI `def` endpoints,
        scripts): blocks until the job is durable and returns its handle, whose `*_sync`
        methods block too. Arguments are checked here, in the caller's thread; the store
        call runs as `Backburner.run_sync` says."""
        job = build_job(self, DEFAULT_OPTIONS, args, kwargs)
        return self.app.run_sync(lambda: insert_one(self.app, job, task=self))

    async def enqueue_many(
        self, calls: Iterable[Call | tuple[Any, ...] | Mapping[str, Any]]
    ) -> list[Job[R]]:
        """Store many jobs in one transaction (all or none). Each item is `task.call(...)`,
        a tuple of positional arguments, or a mapping of keyword arguments."""
        return await _enqueue_many(self, DEFAULT_OPTIONS, calls)

    def enqueue_many_sync(
        self, calls: Iterable[Call | tuple[Any, ...] | Mapping[str, Any]]
    ) -> list[Job[R]]:
        """`enqueue_many` for sync code, as `enqueue_sync`."""
        jobs = _build_many(self, DEFAULT_OPTIONS, calls)
        return self.app.run_sync(lambda: insert_jobs(self.app, jobs, task=self))

    def call(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        """Arguments for `enqueue_many`, `app.chain` and `app.group`, checked by mypy like
        `enqueue`."""
        return Call(args, kwargs, self)

    def pipe(
        self: Task[Concatenate[Any, P2], R], *args: P2.args, **kwargs: P2.kwargs
    ) -> Call:
        """A step of `app.chain` (or a group's `then=`) whose first positional parameter
        receives, when it runs, what it follows produced: the previous step's result in a
        chain, the list of the members' results (in member order) for a group's callback.
        Give the other arguments here; mypy checks them against the rest of the signature."""
        self.signature.encode(args, kwargs, leave_first=True)  # fail now, not when it runs
        return Call(args, kwargs, self, receives=True)

    def _new_job(
        self,
        options: EnqueueOptions,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        leave_first: bool = False,
    ) -> NewJob:
        # Kept for tests that build a job without storing it (tests/unit/test_limits.py);
        # the package calls `backburner.enqueue.build_job`.
        return build_job(self, options, args, kwargs, leave_first=leave_first)


async def _enqueue_many(
    task: Task[Any, R],
    options: EnqueueOptions,
    calls: Iterable[Call | tuple[Any, ...] | Mapping[str, Any]],
) -> list[Job[R]]:
    """`enqueue_many` of a task or a bound task: every item checked, then one insert."""
    new_jobs = _build_many(task, options, calls)
    return await insert_jobs(task.app, new_jobs, options.connection, task=task)


def _build_many(
    task: Task[Any, R],
    options: EnqueueOptions,
    calls: Iterable[Call | tuple[Any, ...] | Mapping[str, Any]],
) -> list[NewJob]:
    new_jobs = []
    for index, item in enumerate(calls):
        if isinstance(item, Call):
            args, kwargs = item.args, item.kwargs
        elif isinstance(item, tuple):
            args, kwargs = item, {}
        elif isinstance(item, Mapping):
            args, kwargs = (), item
        else:
            raise InvalidArgumentsError(
                task.name, None,
                f"enqueue_many item {index} must be a task.call(...), a tuple or a mapping, "
                f"got {type(item).__name__}",
            )
        new_jobs.append(build_job(task, options, args, kwargs))
    return new_jobs


class BoundTask(Generic[P, R]):
    """A task with per-enqueue options applied (`task.options(...)`)."""

    def __init__(self, task: Task[P, R], options: EnqueueOptions) -> None:
        self.task = task
        self._options = options

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        job = build_job(self.task, self._options, args, kwargs)
        return await insert_one(self.task.app, job, self._options.connection, task=self.task)

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """`enqueue` with these options, for sync code (see `Task.enqueue_sync`). With
        `connection=` a sync connection (psycopg, a SQLAlchemy `Session`, Django's), the
        job joins that connection's transaction."""
        job = build_job(self.task, self._options, args, kwargs)
        app, connection = self.task.app, pinned(self._options.connection)
        return app.run_sync(lambda: insert_one(app, job, connection, task=self.task))

    async def enqueue_many(
        self, calls: Iterable[Call | tuple[Any, ...] | Mapping[str, Any]]
    ) -> list[Job[R]]:
        return await _enqueue_many(self.task, self._options, calls)

    def enqueue_many_sync(
        self, calls: Iterable[Call | tuple[Any, ...] | Mapping[str, Any]]
    ) -> list[Job[R]]:
        """`enqueue_many` with these options, for sync code (see `Task.enqueue_sync`)."""
        jobs = _build_many(self.task, self._options, calls)
        app, connection = self.task.app, pinned(self._options.connection)
        return app.run_sync(lambda: insert_jobs(app, jobs, connection, task=self.task))

    def call(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        """`task.call` with these options (a step of a chain or group)."""
        return Call(args, kwargs, self.task, options=self._options)

    def pipe(
        self: BoundTask[Concatenate[Any, P2], R], *args: P2.args, **kwargs: P2.kwargs
    ) -> Call:
        """`task.pipe` with these options."""
        self.task.signature.encode(args, kwargs, leave_first=True)
        return Call(args, kwargs, self.task, receives=True, options=self._options)

    def options(self, **changes: Any) -> BoundTask[P, R]:
        merged = self.task.options(
            delay=changes.pop("delay", self._options.delay),
            at=changes.pop("at", self._options.at),
            priority=changes.pop("priority", self._options.priority),
            queue=changes.pop("queue", self._options.queue),
            retries=changes.pop("retries", self._options.retries),
            timeout=changes.pop("timeout", self._options.timeout),
            connection=changes.pop("connection", self._options.connection),
            unique_key=changes.pop("unique_key", self._options.unique_key),
            unique=changes.pop("unique", self._options.unique),
            unique_scope=changes.pop(
                "unique_scope",
                UniqueScope.ACTIVE
                if self._options.unique_scope is UniqueScope.PERIOD
                else self._options.unique_scope,
            ),
            unique_for=changes.pop("unique_for", self._options.unique_for),
            concurrency_key=changes.pop("concurrency_key", self._options.concurrency_key),
        )
        if changes:
            raise ConfigurationError(f"unknown option(s): {', '.join(sorted(changes))}")
        return merged


def default_task_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "__main__"
    if module == "__main__":
        # A script run directly and imported by a worker must give the same name in both.
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name
        else:
            file = getattr(main, "__file__", None)
            if file:
                module = file.rsplit("/", 1)[-1].removesuffix(".py")
    return f"{module}.{func.__qualname__}"


def make_options(func: Callable[..., Any], **given: Any) -> TaskOptions:
    name = given.pop("name", None) or default_task_name(func)
    if "backoff" in given:
        given["backoff"] = as_backoff(given["backoff"])
    retry_on = given.get("retry_on")
    if retry_on is not None:
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        given["retry_on"] = tuple(retry_on)
        for exc in given["retry_on"]:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise ConfigurationError(f"{name}: retry_on must list exception classes")
    if "rate_limit" in given and not isinstance(given["rate_limit"], RateLimit):
        given["rate_limit"] = parse_rate_limit(name, given["rate_limit"])
    clean = {k: v for k, v in given.items() if v is not UNSET}
    return replace(TaskOptions(name=name), **clean)
