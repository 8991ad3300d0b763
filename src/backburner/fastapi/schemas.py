"""Response models of the HTTP API: stable, typed, documented in OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from backburner.flows import FlowState
from backburner.job import JobRecord, JobState


class ProgressOut(BaseModel):
    current: float
    total: float | None = None
    percent: float | None = Field(None, description="0-100 when a total is known")
    message: str | None = None


class AttemptErrorOut(BaseModel):
    attempt: int
    type: str
    message: str
    traceback: str | None = None
    reason: str
    at: datetime


def _json_number(value: Any) -> Any:
    """A JSON number, as the schema's `integer`/`number` means it: not a boolean (pydantic
    would take `true` as 1) and not a string of digits; an integral float such as 1.0 is
    an integer in JSON Schema, so it stays acceptable for an `int`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    return value


_NUMBER = BeforeValidator(_json_number)  # after the constraints, so they stay in the schema


class JobOut(BaseModel):
    """Everything known about one job."""

    id: str
    task: str
    queue: str
    priority: int
    state: JobState
    attempt: int
    max_attempts: int
    args: list[Any]
    # Named so only because `kwargs` clashes with pydantic's generated __init__ under mypy.
    keyword_args: dict[str, Any] = Field(serialization_alias="kwargs")
    result: Any = None
    reason: str | None = Field(None, description="why a failed or cancelled job ended so")
    progress: ProgressOut | None = None
    errors: list[AttemptErrorOut] = []
    worker_id: str | None = None
    created_at: datetime
    updated_at: datetime
    run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    flow_id: str | None = Field(
        None, description="the chain or group this job belongs to: the id of its first job"
    )
    depends_on: list[str] = Field(
        [], description="ids of the jobs this one waits for (previous chain step, or a "
        "group's members for its callback), in order"
    )
    dependents: list[str] = Field(
        [], description="ids of the jobs that wait for this one"
    )
    waiting_on: int = Field(
        0, description="how many of depends_on have not completed yet (while > 0 the job "
        "is scheduled at 9999-12-31 and no worker takes it)"
    )

    @classmethod
    def of(cls, record: JobRecord) -> JobOut:
        progress = None
        if record.progress is not None:
            progress = ProgressOut(
                current=record.progress.current, total=record.progress.total,
                percent=record.progress.percent, message=record.progress.message,
            )
        return cls(
            id=record.id, task=record.task, queue=record.queue, priority=record.priority,
            state=record.state, attempt=record.attempt, max_attempts=record.max_attempts,
            args=record.args if isinstance(record.args, list) else [],
            keyword_args=record.kwargs if isinstance(record.kwargs, dict) else {},
            result=record.result, reason=record.reason.value if record.reason else None,
            progress=progress,
            errors=[
                AttemptErrorOut(attempt=e.attempt, type=e.type, message=e.message,
                                traceback=e.traceback, reason=e.reason.value, at=e.at)
                for e in record.errors
            ],
            worker_id=record.worker_id, created_at=record.created_at,
            updated_at=record.updated_at, run_at=record.run_at,
            started_at=record.started_at, finished_at=record.finished_at,
            flow_id=record.flow_id, depends_on=list(record.depends_on),
            dependents=list(record.dependents), waiting_on=record.waiting_on,
        )


class FlowOut(BaseModel):
    """A chain or group (`app.chain`, `app.group`) and its jobs."""

    id: str = Field(description="the flow's id: the id of its first job")
    kind: Literal["chain", "group"]
    state: FlowState
    failed: str | None = Field(
        None, description="id of the job that failed or was cancelled and stopped the flow"
    )
    jobs: list[JobOut] = Field(
        description="a chain's steps in order; a group's members in order, then its callback"
    )


class JobPageOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page")


class JobAccepted(BaseModel):
    """The answer to a request that started a job (HTTP 202)."""

    id: str
    task: str
    state: JobState
    status_url: str
    events_url: str
    websocket_url: str


class JobCountOut(BaseModel):
    count: int


class BulkIn(BaseModel):
    """The filter of a bulk action (as the query of `GET /jobs`) and its confirmation."""

    model_config = {"extra": "forbid"}

    states: list[JobState] = Field(default_factory=list, max_length=6)
    task: str | None = Field(None, max_length=500)
    queue: str | None = Field(None, max_length=200)
    search: str | None = Field(None, max_length=200)
    created_after: Annotated[float, Field(allow_inf_nan=False), _NUMBER] | None = Field(
        None, description="epoch seconds")
    created_before: Annotated[float, Field(allow_inf_nan=False), _NUMBER] | None = Field(
        None, description="epoch seconds")
    limit: Annotated[int, Field(ge=1), _NUMBER] | None = Field(
        None, description="act on at most this many jobs")
    confirm: Literal[True] = Field(description="must be true: the action is not undoable")
    expected_count: Annotated[int, Field(ge=0), _NUMBER] | None = Field(
        None, description="the count the user saw (GET /jobs/count with ?action=); "
        "a different count now is a 409",
    )


class BulkOut(BaseModel):
    action: str
    matched: int
    changed: int
    skipped: int


class FailureGroupOut(BaseModel):
    """Failed jobs with one fingerprint (task, exception type, message template)."""

    fingerprint: str
    task: str
    error_type: str
    message_template: str
    count: int
    first_seen: datetime
    last_seen: datetime
    sample_job_id: str
    sample_message: str
    job_ids: list[str] = Field(description="the newest of the group (at most 100)")
    queues: list[str]


class RetriedOut(BaseModel):
    retried: int
