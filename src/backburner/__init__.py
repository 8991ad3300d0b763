"""Backburner: durable background jobs for FastAPI and asyncio."""

from backburner._version import __version__
from backburner.app import Backburner, ScheduleInfo
from backburner.backends.protocol import Backend
from backburner.context import CancelReason, JobContext
from backburner.errors import (
    BackburnerError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidArgumentsError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobStateError,
    LeaseLostError,
    RetryLater,
    SyncCallError,
    TaskNotFoundError,
)
from backburner.flows import Flow, FlowState, FlowStatus
from backburner.handle import Job
from backburner.job import AttemptError, FailureReason, JobRecord, JobState, Progress
from backburner.queues import QueueInfo
from backburner.retention import Retention
from backburner.retry import Backoff
from backburner.task import BoundTask, Call, Task
from backburner.unique import UniqueScope
from backburner.worker import Worker, WorkerCrashedError

__all__ = [
    "AttemptError",
    "Backburner",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "Backoff",
    "BackburnerError",
    "BoundTask",
    "Call",
    "CancelReason",
    "ConfigurationError",
    "FailureReason",
    "Flow",
    "FlowState",
    "FlowStatus",
    "InvalidArgumentsError",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobFailedError",
    "JobNotFoundError",
    "JobRecord",
    "JobState",
    "JobStateError",
    "LeaseLostError",
    "Progress",
    "QueueInfo",
    "Retention",
    "RetryLater",
    "ScheduleInfo",
    "SyncCallError",
    "Task",
    "TaskNotFoundError",
    "UniqueScope",
    "Worker",
    "WorkerCrashedError",
    "__version__",
]
