"""Running one attempt of a job and deciding what it means for the job.

The worker calls `run_attempt` once per claimed job. It returns an `Outcome` (the write the
worker will batch to the store) and never raises, except when the worker itself is being torn
down: whatever a task (or its argument validators) raises, `SystemExit` and
`KeyboardInterrupt` included, ends the attempt as a recorded failure. Retry policy lives
here, not in the backends.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from backburner import codec, tracing
from backburner.backends.protocol import ClaimedJob, Completion, Failure, Release
from backburner.context import CancelReason, JobContext
from backburner.errors import InvalidArgumentsError, LeaseLostError, RetryLater
from backburner.job import FailureReason
from backburner.task import Task
from backburner.threads import DaemonThreads

_MAX_TRACEBACK = 32_000
_STOP_GRACE = 2.0
"""Seconds a cancelled or timed-out task gets to unwind before it is left behind."""

log = logging.getLogger("backburner.worker")

T = TypeVar("T")

OutcomeKind = Literal["complete", "fail", "release", "abandon"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    job: ClaimedJob
    write: Completion | Failure | Release | None
    """None for `abandon`: this attempt lost its job and must not write anything."""
    ran: float | None = None
    """Seconds the attempt ran (the worker's monotonic clock), for metrics and traces."""


def describe(exc: BaseException, with_traceback: bool = True) -> dict[str, Any]:
    text = None
    if with_traceback:
        text = "".join(traceback.format_exception(exc))
        if len(text) > _MAX_TRACEBACK:
            text = text[: _MAX_TRACEBACK // 2] + "\n...\n" + text[-_MAX_TRACEBACK // 2 :]
    return {"type": type(exc).__qualname__, "message": str(exc)[:4000], "traceback": text}


async def run_attempt(
    job: ClaimedJob,
    task: Task[Any, Any] | None,
    ctx: JobContext,
    threads: DaemonThreads,
) -> Outcome:
    if task is None:
        error = {"type": "UnknownTask", "message": f"no task named {job.task!r} is registered",
                 "traceback": None}
        return _end(job, error, FailureReason.UNKNOWN_TASK)
    try:
        args, kwargs, timeout = _prepare(job, task, ctx)
    except (codec.PayloadError, InvalidArgumentsError) as exc:
        return _end(job, describe(exc, False), FailureReason.INVALID_PAYLOAD)
    except Exception as exc:
        # Anything else while decoding: a validator that raised something pydantic does not
        # turn into a validation error (a KeyError, say), or a stored field of the wrong
        # type. Still this job's input, and it would fail the same way again.
        return _end(job, describe(exc), FailureReason.INVALID_PAYLOAD)

    # The call runs as its own task, awaited through _finished_within, which never passes
    # our own cancellation on to it. So a task that ignores or delays cancellation (a slow
    # `finally`, a swallowed CancelledError, `shield`) still lets this attempt end within
    # `_STOP_GRACE` of its timeout or cancel: its slot is freed, and whatever it writes later
    # is fenced off.
    try:
        call = _start(task, args, kwargs, threads)
    except Exception as exc:
        return _failed(job, task, describe(exc), FailureReason.ERROR, None,
                       retryable=_retryable(task, exc))
    try:
        done = await _finished_within(call, timeout)
    except asyncio.CancelledError:
        if not call.done():
            outcome = await _cancelled(call, job, ctx)
            if outcome is not None:
                return outcome
            raise
        # It finished before the cancellation reached us: record what it did (a fenced
        # write is rejected anyway if the lease was lost).
        done = True
    if not done:
        # Sync tasks keep running in their thread; the flag lets them stop early.
        ctx.signal_cancel(CancelReason.TIMEOUT)
        await _stop(call, job)
        error = {"type": "TimeoutError",
                 "message": f"attempt ran past its {timeout or 0:g}s timeout",
                 "traceback": None}
        return _failed(job, task, error, FailureReason.TIMEOUT, None, retryable=True)
    try:
        value = call.result()
    except asyncio.CancelledError:
        # The task cancelled itself (or was cancelled from inside): not a success.
        error = {"type": "Cancelled", "message": "the task was cancelled", "traceback": None}
        return _failed(job, task, error, FailureReason.ERROR, None, retryable=True)
    except LeaseLostError:
        return Outcome("abandon", job, None)
    except RetryLater as exc:
        return _failed(job, task, describe(exc, False), FailureReason.RETRY_REQUESTED,
                       exc.delay, retryable=True)
    except _TaskExit as exc:
        return _failed(job, task, describe(exc.raised), FailureReason.ERROR, None,
                       retryable=_retryable(task, exc.raised))
    except BaseException as exc:
        # Even when the lease was lost meanwhile, the write is attempted: fencing in the
        # store rejects it, and that rejection is what proves a zombie can do no harm.
        # BaseException: whatever the task raised is its job's failure, never the worker's.
        return _failed(job, task, describe(exc), FailureReason.ERROR, None,
                       retryable=_retryable(task, exc))

    try:
        result = codec.dumps(task.signature.encode_result(value))
    except Exception as exc:  # a serializer may raise anything: the result cannot be stored
        return _end(job, describe(exc, False), FailureReason.ERROR)
    return Outcome("complete", job, Completion(
        job.id, job.attempt, result, job.has_dependents, job.has_limits
    ))


def unexpected(job: ClaimedJob, task: Task[Any, Any] | None, exc: Exception) -> Outcome:
    """The outcome of an attempt that raised out of `run_attempt` (a bug in Backburner, a
    tracer or a stored field): still a recorded failure, counted against the retries, so the
    job can never stay `running` with no error while its worker renews the lease for ever."""
    error = describe(exc)
    if task is not None:
        try:
            return _failed(job, task, error, FailureReason.ERROR, None, retryable=True)
        except Exception:  # the job's own counters are unusable: end it, with the error
            log.exception("job %s attempt %d: no retry could be computed", job.id, job.attempt)
    return _end(job, error, FailureReason.ERROR)


class _TaskExit(Exception):
    """Carries a `SystemExit` or `KeyboardInterrupt` raised by a task's own code. An asyncio
    Task re-raises those two through the event loop, which would end the whole worker (and
    every other job in it); carried as an ordinary exception they end only their attempt."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(repr(raised))
        self.raised = raised


async def _contained(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _TaskExit(exc) from exc


def _contained_call(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    try:
        return func(*args, **kwargs)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _TaskExit(exc) from exc


def _prepare(
    job: ClaimedJob, task: Task[Any, Any], ctx: JobContext
) -> tuple[list[Any], dict[str, Any], float | None]:
    """The call's arguments and timeout, from the stored job: raises if they are unusable."""
    args, kwargs = task.signature.decode(
        codec.loads(job.args), tracing.strip(codec.loads(job.kwargs))
    )
    if task.signature.context_parameter is not None:
        kwargs[task.signature.context_parameter] = ctx
    timeout = job.timeout if job.timeout is not None else task.defaults.timeout
    # Checked before the call starts: the timer would only refuse it once the task runs.
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float))
        or math.isnan(timeout)
    ):
        raise codec.PayloadError(f"the stored timeout {timeout!r} is not a number of seconds")
    return args, kwargs, timeout


_EAGER = sys.version_info >= (3, 12)
"""asyncio.Task(..., eager_start=True) exists (3.12+)."""


def start_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """A task for one job (or one attempt's call). On Python 3.12+ it starts eagerly: the
    coroutine runs at once, up to its first real suspension, so a job that never waits (or
    waits on something already done) finishes without a trip through the event loop's
    ready queue. A loop with its own task factory keeps it (it may be how that application
    propagates context or traces); on 3.11 this is `loop.create_task`. The caller must cope
    with a task that is already done when this returns."""
    if _EAGER and loop.get_task_factory() is None:
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
    return loop.create_task(coro)


async def _finished_within(call: asyncio.Future[Any], timeout: float | None) -> bool:
    """Whether `call` finished within `timeout` seconds (None: no limit). What
    `asyncio.wait((call,), timeout=timeout)` answers, without its set, counter and closure
    per call: like it, this never cancels `call`, so a CancelledError raised here is the
    attempt's own and the call is still ours to stop (with its grace)."""
    if call.done():
        return True
    waiter = call.get_loop().create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    call.add_done_callback(wake)
    timer = None if timeout is None else waiter.get_loop().call_later(timeout, wake, None)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        call.remove_done_callback(wake)
    return call.done()


def _start(
    task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any], threads: DaemonThreads
) -> asyncio.Future[Any]:
    if task.is_async:
        return start_task(asyncio.get_running_loop(), _contained(task.func(*args, **kwargs)))
    return asyncio.wrap_future(threads.submit(lambda: _contained_call(task.func, args, kwargs)))


def _retryable(task: Task[Any, Any], exc: BaseException) -> bool:
    """`retry_on` decides; a `SystemExit`, `KeyboardInterrupt` or other `BaseException` the
    task raised is an error like any other where `retry_on` covers every error (its
    default, `(Exception,)`)."""
    retry_on = task.defaults.retry_on
    return isinstance(exc, retry_on) or (
        not isinstance(exc, Exception) and issubclass(Exception, retry_on)
    )


async def _cancelled(
    call: asyncio.Future[Any], job: ClaimedJob, ctx: JobContext
) -> Outcome | None:
    """The attempt was cancelled from outside: stop the call, say what that means for the job
    (None: no reason was recorded, the worker itself is being torn down)."""
    reason = ctx.cancel_reason
    await _stop(call, job)
    if reason is CancelReason.SHUTDOWN:
        return Outcome("release", job, Release(job.id, job.attempt))
    if reason is CancelReason.LOST:
        return Outcome("abandon", job, None)
    if reason is CancelReason.CANCELLED:
        error = {"type": "Cancelled", "message": "cancelled on request", "traceback": None}
        return _end(job, error, FailureReason.CANCELLED, counts=False)
    return None


async def _stop(call: asyncio.Future[Any], job: ClaimedJob) -> None:
    """Cancel the call and give it a moment to unwind; past that, leave it behind."""
    if call.done():
        _consume_result(call)
        return
    call.cancel()
    done, _ = await asyncio.wait((call,), timeout=_STOP_GRACE)
    if not done:
        log.warning(
            "job %s attempt %d: the task did not stop within %.0fs of being cancelled; "
            "its slot is freed and anything it writes later is rejected",
            job.id, job.attempt, _STOP_GRACE,
        )
        call.add_done_callback(_consume_result)
    elif not call.cancelled():
        call.exception()  # retrieved, so asyncio does not log "exception never retrieved"


def _consume_result(call: asyncio.Future[Any]) -> None:
    if not call.cancelled():
        call.exception()


def _failed(
    job: ClaimedJob,
    task: Task[Any, Any],
    error: dict[str, Any],
    reason: FailureReason,
    delay: float | None,
    *,
    retryable: bool,
) -> Outcome:
    failures = job.failures + 1
    if not retryable or failures >= job.max_attempts:
        return _end(job, error, reason)
    if delay is None:
        delay = task.defaults.backoff.delay(failures)
    return Outcome("fail", job, Failure(job.id, job.attempt, error, reason, max(0.0, delay),
                                         has_dependents=job.has_dependents,
                                         has_limits=job.has_limits))


def _end(
    job: ClaimedJob, error: dict[str, Any], reason: FailureReason, *, counts: bool = True
) -> Outcome:
    return Outcome("fail", job, Failure(job.id, job.attempt, error, reason, None, counts,
                                         job.has_dependents, job.has_limits))
