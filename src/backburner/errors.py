"""The exceptions Backburner raises.

    BackburnerError
    ├── ConfigurationError        a bad URL, option or task definition
    │   └── StoreNotFoundError    no Backburner store at the URL (opened with create=False)
    ├── TaskNotFoundError         a task name that is not registered
    ├── InvalidArgumentsError     enqueue arguments that do not fit the signature or JSON
    ├── JobNotFoundError          an id that the backend does not know
    ├── JobStateError             a transition the job's current state does not allow
    ├── JobFailedError            `Job.result()` on a job that ended `failed`
    ├── JobCancelledError         `Job.result()` on a job that ended `cancelled`
    ├── LeaseLostError            a write from an attempt that no longer owns the job
    └── BackendError
        └── BackendUnavailableError   the store cannot be reached or written right now

`RetryLater` is not an error: a task raises it to ask for another attempt later.
"""

from __future__ import annotations

from typing import Any


class BackburnerError(Exception):
    """Base class of every exception Backburner raises on purpose."""


class ConfigurationError(BackburnerError):
    """A backend URL, task option or worker option is invalid."""


class StoreNotFoundError(ConfigurationError):
    """`Backend.open(create=False)` found no Backburner store at the URL: a missing SQLite
    file, or a database, schema or prefix that holds no Backburner data. Read-only tools
    (the CLI's listings) open so, so a typo in a URL is reported instead of creating an
    empty store."""


class TaskNotFoundError(BackburnerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no task named {name!r} is registered on this app")
        self.name = name


class InvalidArgumentsError(BackburnerError, ValueError):
    """Arguments given to `enqueue` do not fit the task's signature or are not JSON."""

    def __init__(self, task: str, argument: str | None, reason: str) -> None:
        where = f"argument {argument!r}" if argument else "arguments"
        super().__init__(f"{task}: {where}: {reason}")
        self.task = task
        self.argument = argument
        self.reason = reason


class JobNotFoundError(BackburnerError, LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class JobStateError(BackburnerError):
    """The job exists but its state does not allow what was asked (e.g. retrying a running job)."""


class JobFailedError(BackburnerError):
    def __init__(self, job_id: str, reason: str | None, error: dict[str, Any] | None) -> None:
        detail = ""
        if error:
            detail = f": {error.get('type')}: {error.get('message')}"
        super().__init__(f"job {job_id} failed ({reason or 'error'}){detail}")
        self.job_id = job_id
        self.reason = reason
        self.error = error


class JobCancelledError(BackburnerError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


class LeaseLostError(BackburnerError):
    """This attempt no longer owns its job (its lease expired and it was fenced off)."""


class BackendError(BackburnerError):
    """The backend failed in a way that is not the caller's fault."""


class BackendUnavailableError(BackendError):
    """The store is unreachable, locked for too long, read-only or out of space.

    Transient: callers may retry; HTTP layers answer 503.
    """


class SyncCallError(BackburnerError, RuntimeError):
    """A sync call (`enqueue_sync`, `result_sync`...) made where it cannot work: from a
    coroutine on Backburner's own portal loop, which would wait for itself."""


class RetryLater(Exception):
    """Raised by a task to be run again later; counts as one of the task's attempts."""

    def __init__(self, delay: float | None = None, reason: str | None = None) -> None:
        super().__init__(reason or "the task asked to be retried later")
        self.delay = delay
        self.reason = reason
