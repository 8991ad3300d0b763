"""What a running task sees of its job: identity, attempt, progress and cancellation."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable
from enum import StrEnum

from backburner.errors import LeaseLostError
from backburner.job import Progress

ProgressWriter = Callable[["JobContext", Progress], Awaitable[bool | None]]
"""Stores an update: True accepted, False refused (lease lost), None skipped (outage)."""

_MAX_MESSAGE = 2000


class CancelReason(StrEnum):
    """Why a running attempt is asked to stop."""

    CANCELLED = "cancelled"
    """`cancel()` was called on its job: it ends `cancelled`."""
    TIMEOUT = "timeout"
    """It ran past the task's timeout: a failed attempt, retried like any other."""
    SHUTDOWN = "shutdown"
    """The worker is shutting down past its grace period: the job is given back."""
    LOST = "lost"
    """The worker lost the job's lease (another attempt may own it): the attempt is dropped."""


class JobContext:
    """Declare a parameter annotated `JobContext` in a task to receive one; it is injected by
    the worker and never part of the enqueued arguments."""

    __slots__ = (
        "_cancel_reason", "_cancelled", "_loop", "_write_progress", "attempt", "job_id",
        "max_attempts", "queue", "task",
    )

    def __init__(
        self,
        *,
        job_id: str,
        task: str,
        queue: str,
        attempt: int,
        max_attempts: int,
        write_progress: ProgressWriter,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.job_id = job_id
        self.task = task
        self.queue = queue
        self.attempt = attempt
        """The number of this attempt (1 for the first run)."""
        self.max_attempts = max_attempts
        self._write_progress = write_progress
        self._loop = loop
        # A threading.Event, not an asyncio one: sync tasks poll it from their own thread.
        # Made on first use: most jobs never look at it.
        self._cancelled: threading.Event | None = None
        self._cancel_reason: CancelReason | None = None

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts of this job: use it to make side effects idempotent."""
        return self.job_id

    async def progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> bool:
        """Persist and publish progress; True once stored. Raises `LeaseLostError` if this
        attempt no longer owns the job (another attempt took over): stop working when it
        does. While the store is unreachable the update is skipped (False) instead of failing
        the job: the next one supersedes it."""
        update = _checked(current, total, message)
        stored = await self._write_progress(self, update)
        if stored is False:
            raise LeaseLostError(f"job {self.job_id} attempt {self.attempt} lost its lease")
        return stored is True

    def set_progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> bool:
        """`progress` for sync tasks, which run in a worker thread: blocks until persisted."""
        if _on_loop_thread(self._loop):
            raise RuntimeError("set_progress blocks; from async code use `await ctx.progress()`")
        future = asyncio.run_coroutine_threadsafe(
            self.progress(current, total, message), self._loop
        )
        return future.result()

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, timed out or the worker is shutting down past
        its grace period. Sync tasks should check it between steps and return early."""
        return self._cancel_reason is not None

    @property
    def cancel_reason(self) -> CancelReason | None:
        """Why the attempt is being stopped (a string enum: compares equal to "cancelled",
        "timeout", "shutdown" or "lost"); None while it is not."""
        return self._cancel_reason

    def signal_cancel(self, reason: CancelReason) -> None:
        """Ask the running attempt to stop (the worker calls this; the first reason given
        is the one kept). Async tasks are cancelled by the worker as well; sync tasks see
        `cancelled` turn true and `wait_cancelled` return."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        if self._cancelled is not None:
            self._cancelled.set()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """For sync tasks: sleep up to `timeout` seconds, returning early (True) once the job
        is cancelled. Use it instead of `time.sleep` between steps."""
        if self._cancelled is None:
            self._cancelled = threading.Event()
            if self._cancel_reason is not None:
                self._cancelled.set()
        return self._cancelled.wait(timeout)

    def __repr__(self) -> str:
        return f"<JobContext {self.task} id={self.job_id} attempt={self.attempt}>"


def _checked(current: float, total: float | None, message: str | None) -> Progress:
    for label, value in (("current", current), ("total", total)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"progress {label} must be a number, got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"progress {label} must be a finite number >= 0, got {value}")
    if message is not None:
        if not isinstance(message, str):
            raise TypeError("progress message must be a string")
        message = message[:_MAX_MESSAGE]
    return Progress(current, total, message)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

