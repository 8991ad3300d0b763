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
    """A handle on one job, by id: what `enqueue` returns, and `app.job(id)`.

    Making one reads nothing. Its methods read or act when called, through the app's
    (`get_job`, `wait_for`, `cancel`, `retry`, `delete`), with the same answers: `info()` is
    `app.get_job` raising JobNotFoundError instead of answering None, as `status`, `wait`,
    `result`, `cancel` and `retry` do for a job that is not there; `delete()` answers
    whether it deleted one."""

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
        """The state the job had when this handle was made (a duplicate's: the holder's);
        `pending`, unread, for `app.job(id)`."""
        self.duplicate = duplicate
        """True when the enqueue stored nothing: a live job held its unique key, and this
        is that job's handle."""

    def __repr__(self) -> str:
        return f"<Job {self.id}{' duplicate' if self.duplicate else ''}>"

    @property
    def task_name(self) -> str | None:
        """The name of the job's task, when the handle was made knowing it (by an enqueue,
        a flow); None for `app.job(id)`, which reads nothing (`info().task` has it)."""
        return self._task.name if self._task is not None else None

    async def info(self) -> JobRecord:
        """The job's record as stored now; JobNotFoundError if there is no such job."""
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
        """`app.cancel(id)`: cancel a waiting job at once, ask the worker of a running one
        to stop it; the state after the call. JobNotFoundError if there is no such job."""
        return await self._app.cancel(self.id)

    async def retry(self) -> JobState:
        """`app.retry(id)`: run a `failed` or `cancelled` job again with a fresh set of
        attempts; the state after the call (`pending` when retried, else the state it is
        in, unchanged). JobNotFoundError if there is no such job."""
        return await self._app.retry(self.id)

    async def delete(self) -> bool:
        """`app.delete(id)`: True if the job was deleted, False if there is no such job or
        it is running."""
        return await self._app.delete(self.id)

    # -- for sync code: the same calls, blocking (see `Backburner.run_sync`) ---------------
    def info_sync(self) -> JobRecord:
        return self._app.run_sync(self.info)

    def status_sync(self) -> JobState:
        return self._app.run_sync(self.status)

    def wait_sync(self, timeout: float | None = None) -> JobRecord:
        """`wait`, blocking; the wait itself runs on an event loop, woken by the store's
        events, so a waiting thread costs no polling."""
        return self._app.run_sync(lambda: self.wait(timeout))

    def result_sync(self, timeout: float | None = None) -> R:
        return self._app.run_sync(lambda: self.result(timeout))

    def cancel_sync(self) -> JobState:
        return self._app.run_sync(self.cancel)

    def retry_sync(self) -> JobState:
        return self._app.run_sync(self.retry)

    def delete_sync(self) -> bool:
        return self._app.run_sync(self.delete)
