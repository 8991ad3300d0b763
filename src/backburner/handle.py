"""`Job[R]`: the handle `enqueue` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from backburner.errors import JobCancelledError, JobFailedError, JobNotFoundError
from backburner.job import JobRecord, JobState

if TYPE_CHECKING:
    from backburner.app import Backburner
    from backburner.task import Task

R = TypeVar("R")


class Job(Generic[R]):
    __slots__ = ("_app", "_task", "duplicate", "id", "initial_state")

    def __init__(
        self,
        app: Backburner,
        job_id: str,
        task: Task[Any, R] | None = None,
        initial_state: JobState = JobState.PENDING,
        duplicate: bool = False,
    ) -> None:
        self._app = app
        self._task = task
        self.id = job_id
        self.initial_state = initial_state
        """The state the job had when this handle was made (a duplicate's: the holder's)."""
        self.duplicate = duplicate
        """True when the enqueue stored nothing: a live job held its unique key, and this
        is that job's handle."""

    def __repr__(self) -> str:
        return f"<Job {self.id}{' duplicate' if self.duplicate else ''}>"

    async def info(self) -> JobRecord:
        record = await self._app.get_job(self.id)
        if record is None:
            raise JobNotFoundError(self.id)
        return record

    async def status(self) -> JobState:
        return (await self.info()).state

    async def wait(self, timeout: float | None = None) -> JobRecord:
        """Wait for a terminal state; raises TimeoutError after `timeout` seconds."""
        return await self._app.wait_for(self.id, timeout)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the job and return its result. Raises `JobFailedError`,
        `JobCancelledError`, or TimeoutError after `timeout` seconds."""
        record = await self.wait(timeout)
        if record.state is JobState.FAILED:
            last = record.last_error
            raise JobFailedError(
                self.id,
                record.reason.value if record.reason else None,
                last.to_json() if last else None,
            )
        if record.state is JobState.CANCELLED:
            raise JobCancelledError(self.id)
        task = self._task or self._app.tasks.get(record.task)
        if task is None:
            return record.result  # type: ignore[no-any-return]
        return task.signature.decode_result(record.result)  # type: ignore[no-any-return]

    async def cancel(self) -> JobState:
        return await self._app.cancel(self.id)
