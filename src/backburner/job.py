"""What a job is: its states, its stored record, its progress and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    PENDING = "pending"
    """Ready to be claimed by a worker."""
    SCHEDULED = "scheduled"
    """Waiting for its `run_at` time: delayed jobs and retries in backoff."""
    RUNNING = "running"
    """Claimed by a worker, which holds a lease on it."""
    COMPLETED = "completed"
    FAILED = "failed"
    """Terminal: retries exhausted, or a failure that is never retried ("dead")."""
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


class FailureReason(StrEnum):
    """Why an attempt or a job ended badly; stored with every recorded error."""

    ERROR = "error"
    """The task raised an exception."""
    TIMEOUT = "timeout"
    """The attempt ran past the task's timeout."""
    RETRY_REQUESTED = "retry_requested"
    """The task raised `RetryLater`."""
    WORKER_LOST = "worker_lost"
    """The worker stopped heartbeating while it held the job (crash, kill, OOM)."""
    UNKNOWN_TASK = "unknown_task"
    """No task of that name is registered on the worker's app."""
    INVALID_PAYLOAD = "invalid_payload"
    """The stored arguments are not JSON or do not fit the task's signature."""
    CANCELLED = "cancelled"
    DEPENDENCY_FAILED = "dependency_failed"
    """A job this one waited for (in a chain or group) failed or was cancelled, so this one
    never ran (`backburner.flows`)."""


WAITING_RUN_AT = 253402300799.0
"""`run_at` of a job of a chain or group that waits for other jobs (9999-12-31T23:59:59Z):
it is `scheduled` for a time that never comes, so no claim or staging ever takes it; the
transition that completes its last dependency makes it `pending` (`backburner.flows`)."""


def timestamp(value: float | None) -> datetime | None:
    """Epoch seconds (how backends store time) to an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Progress:
    current: float
    total: float | None = None
    message: str | None = None

    @property
    def percent(self) -> float | None:
        """0-100, rounded to 2 decimals so every surface (HTTP, SSE, WebSocket, CLI) shows
        one clean number (16.67, not 16.666666666666668); 100 only once `current` reaches
        `total`, so a bar never reads done before it is."""
        if not self.total:
            return None
        value = round(max(0.0, min(100.0, 100.0 * self.current / self.total)), 2)
        if value == 100.0 and self.current < self.total:
            return 99.99
        return value

    def to_json(self) -> dict[str, Any]:
        return {"current": self.current, "total": self.total, "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Progress | None:
        """Raises TypeError, KeyError or ValueError for data Backburner did not write."""
        if not data:
            return None
        if not isinstance(data, dict):
            raise TypeError(f"progress is not an object: {data!r}")
        total, message = data.get("total"), data.get("message")
        return cls(float(data["current"]), None if total is None else float(total),
                   message if isinstance(message, str) else None)


@dataclass(frozen=True, slots=True)
class AttemptError:
    """One failed attempt, kept for the life of the job."""

    attempt: int
    type: str
    message: str
    traceback: str | None
    reason: FailureReason
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "reason": self.reason.value,
            "at": self.at.timestamp(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttemptError:
        return cls(
            attempt=int(data.get("attempt", 0)),
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=data.get("traceback"),
            reason=FailureReason(data.get("reason", "error")),
            at=datetime.fromtimestamp(float(data.get("at", 0.0)), UTC),
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Everything the backend knows about one job."""

    id: str
    task: str
    queue: str
    priority: int
    """Higher runs first within a queue."""
    state: JobState
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int
    """Number of the latest claim; also the fencing token of that claim."""
    max_attempts: int
    """1 + retries: how many attempts may end in an error before the job fails."""
    failures: int
    """Attempts that ended in an error, a timeout or a retry request."""
    lost: int
    """Attempts whose worker died; after `max_lost` of them the job fails `worker_lost`."""
    timeout: float | None
    errors: tuple[AttemptError, ...]
    result: Any
    reason: FailureReason | None
    """Why a `failed` or `cancelled` job ended so."""
    progress: Progress | None
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    run_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_until: datetime | None = field(default=None)
    unique_key: str | None = None
    """The key this job was enqueued with (`options(unique_key=...)` / `unique=True`)."""
    flow_id: str | None = None
    """For a job of a chain or group (`app.chain`, `app.group`): the flow's id, which is the
    id of its first job (a chain's first step, a group's first member). None otherwise."""
    depends_on: tuple[str, ...] = ()
    """Ids of the jobs this one waits for, in order: a chain step's previous step, or a
    group callback's members. It runs once all of them completed, and is cancelled with
    reason `dependency_failed` if one of them fails or is cancelled."""
    dependents: tuple[str, ...] = ()
    """Ids of the jobs that wait for this one (the next chain step, a group's callback)."""
    waiting_on: int = 0
    """How many of `depends_on` have not completed yet; while > 0 the job is `scheduled`
    with `run_at` 9999-12-31 (`WAITING_RUN_AT`) and no worker takes it."""
    meta: dict[str, Any] = field(default_factory=dict)
    """What travels with the job beside its arguments (`trace`: its enqueue span's context,
    see `backburner.tracing`); never passed to the task. Empty when there is none, or when
    what is stored is not a JSON object."""

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    @property
    def last_error(self) -> AttemptError | None:
        return self.errors[-1] if self.errors else None
