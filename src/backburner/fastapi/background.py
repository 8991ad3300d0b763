"""A durable drop-in for FastAPI's `BackgroundTasks`.

    async def register(user: User, background_tasks: DurableBackgroundTasks) -> dict:
        background_tasks.add_task(send_welcome, user.email, user.name)
        return {"ok": True}

Same `add_task(func, *args, **kwargs)` shape, but each call becomes a persisted, retried,
tracked job. Arguments are checked against the task's signature when `add_task` is called
(so a bad call fails the request, not a worker later), and the jobs are stored after the
endpoint returns and before the response is sent: a client that got its response can count
on the work happening.

Order: FastAPI runs the tasks of one response one after the other, in the order added. One
task is stored as its own job; several become one *chain* job (task `backburner.chain`) that
runs them in that order, so B never starts before A has finished even with many workers. A
chain is retried as a whole (with the most generous retry policy among its steps): like any
job it runs at least once, so its steps should be idempotent.

Worker processes only run tasks they know. `register_background(app, *functions)`, called
where the app is defined, registers the chain runner and plain functions passed to
`add_task`, so a `backburner worker` process has them too. (In the web process a plain
module-level function is registered on its first `add_task`.)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from backburner import codec
from backburner.app import Backburner
from backburner.backends.protocol import NewJob
from backburner.context import JobContext
from backburner.enqueue import DEFAULT_OPTIONS, EnqueueOptions, build_job, insert_jobs
from backburner.errors import BackendUnavailableError, ConfigurationError
from backburner.handle import Job
from backburner.task import Task

CHAIN_TASK = "backburner.chain"


class BackgroundJobs:
    def __init__(self, app: Backburner) -> None:
        self.app = app
        self._pending: list[tuple[Task[Any, Any], NewJob]] = []
        self.jobs: list[Job[Any]] = []
        """Handles of the jobs stored for this request (filled once they are stored)."""

    def add_task(
        self, func: Task[Any, Any] | Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> None:
        """Add `func(*args, **kwargs)`: an `@app.task`, or a module-level function. The
        arguments are checked against its signature now (InvalidArgumentsError)."""
        task = task_for(self.app, func)
        self._pending.append((task, build_job(task, DEFAULT_OPTIONS, args, kwargs)))

    async def store(self) -> list[Job[Any]]:
        """Persist what was added (called for you before the response is sent)."""
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            task, job = pending[0]
            self.jobs += await insert_jobs(self.app, [job], task=task)
        elif pending:
            self.jobs += await _store_chain(self.app, pending)
        return self.jobs


def register_background(
    app: Backburner, *functions: Task[Any, Any] | Callable[..., Any]
) -> None:
    """Register the chain runner and these plain functions on `app`, so that every process
    loading the app (web and worker alike) can run what `add_task` stores. Idempotent."""
    chain_task(app)
    for func in functions:
        task_for(app, func)


def task_for(app: Backburner, func: Task[Any, Any] | Callable[..., Any]) -> Task[Any, Any]:
    """The registered task for `func`, registering a module-level function on first use.

    Refused: lambdas, closures and bound methods, whose code a worker could not find again
    by name (and whose captured state could not be stored as JSON)."""
    if isinstance(func, Task):
        if func.app is not app:
            raise ConfigurationError(f"task {func.name} belongs to another Backburner app")
        return func
    for task in app.tasks.values():
        if task.func is func:
            return task
    name = getattr(func, "__qualname__", repr(func))
    if inspect.ismethod(func):
        raise TypeError(
            f"add_task({name}): a bound method carries its object's state, which cannot be "
            "stored; use a module-level function or an @app.task"
        )
    if not inspect.isfunction(func):
        raise TypeError(f"add_task needs a function or an @app.task, got {type(func).__name__}")
    if "<lambda>" in name:
        raise TypeError(
            "add_task(<lambda>): a lambda has no name a worker could find it by; "
            "use a module-level function or an @app.task"
        )
    if "<locals>" in name:
        raise TypeError(
            f"add_task({name}): a function defined inside another one (a closure) cannot be "
            "found by a worker; move it to module level or make it an @app.task"
        )
    return app.register_task(func)


def chain_task(app: Backburner) -> Task[Any, Any]:
    """The task that runs the steps of one request in order, registered once per app."""
    existing = app.tasks.get(CHAIN_TASK)
    if existing is not None:
        return existing

    # A closure is fine here: it is registered under a fixed name, and every process that
    # builds the app registers the same one (see `register_background`).
    async def run_chain(steps: list[dict[str, Any]], ctx: JobContext) -> list[Any]:
        """Run background tasks added in one request, one after the other."""
        results = []
        for index, step in enumerate(steps):
            task = app.get_task(step["task"])
            await ctx.progress(index, total=len(steps), message=f"step {index + 1}: {task.name}")
            args, kwargs = task.signature.decode(step["args"], step["kwargs"])
            if task.signature.context_parameter is not None:
                kwargs[task.signature.context_parameter] = ctx
            if task.is_async:
                value = await task.func(*args, **kwargs)
            else:
                # A thread, as the worker does for sync tasks: never block the loop.
                value = await asyncio.to_thread(task.func, *args, **kwargs)
            results.append(task.signature.encode_result(value))
        await ctx.progress(len(steps), total=len(steps), message="all steps done")
        return results

    return app.register_task(run_chain, name=CHAIN_TASK)


async def _store_chain(
    app: Backburner, pending: list[tuple[Task[Any, Any], NewJob]]
) -> list[Job[Any]]:
    chain = chain_task(app)
    steps = [
        {"task": task.name, "args": codec.loads(job.args), "kwargs": codec.loads(job.kwargs)}
        for task, job in pending
    ]
    timeouts = [job.timeout for _, job in pending]
    options = EnqueueOptions(
        retries=max(job.max_attempts for _, job in pending) - 1,
        # The chain may take as long as its steps together; one step without a limit
        # means no limit.
        timeout=None if None in timeouts else sum(t for t in timeouts if t is not None),
        queue=pending[0][1].queue,
    )
    return await insert_jobs(app, [build_job(chain, options, (steps,), {})], task=chain)


async def _background_jobs(request: Request) -> BackgroundJobs:
    app = getattr(request.app.state, "backburner", None)
    if not isinstance(app, Backburner):
        raise ConfigurationError(
            "BackgroundJobs needs the app's lifespan: FastAPI(lifespan=backburner_lifespan(app))"
        )
    jobs = BackgroundJobs(app)
    # The jobs are stored as the endpoint's own exit stack closes: after it returned (its
    # response serialized), before the response is sent; not at all if it raised. A plain
    # exit callback on FastAPI's per-endpoint stack rather than a dependency with `yield`,
    # whose asynccontextmanager and cancel scopes cost more than the enqueue itself.
    stack = request.scope.get("fastapi_function_astack")
    if not isinstance(stack, AsyncExitStack):
        raise ConfigurationError("DurableBackgroundTasks needs FastAPI's per-endpoint exit "
                                 "stack (fastapi >= 0.138)")
    stack.push_async_exit(functools.partial(_store_on_exit, jobs))
    return jobs


async def _store_on_exit(
    jobs: BackgroundJobs, exc_type: type[BaseException] | None, *_: object
) -> bool:
    if exc_type is None:
        try:
            await jobs.store()
        except BackendUnavailableError as exc:
            raise HTTPException(503, f"the job store is unavailable: {exc}",
                                headers={"Retry-After": "5"}) from None
    return False  # an exception of the endpoint goes on as it is


BackgroundJobsDependency = Depends(_background_jobs)
DurableBackgroundTasks = Annotated[BackgroundJobs, BackgroundJobsDependency]
"""Declare a parameter of this type (like FastAPI's `BackgroundTasks`) to get one."""
