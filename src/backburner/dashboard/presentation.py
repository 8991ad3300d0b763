"""How the pages show things: a job's timeline, times, ages, and JSON values as text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from backburner.dashboard.forms import Field, defaults_of, fields_of
from backburner.job import WAITING_RUN_AT, JobRecord
from backburner.task import Task


@dataclass(frozen=True, slots=True)
class Timeline:
    at: datetime
    what: str
    detail: str = ""


def timeline(job: JobRecord) -> list[Timeline]:
    events = [Timeline(job.created_at, "created", f"queue {job.queue}")]
    if job.waiting_on > 0:
        events.append(Timeline(job.created_at, "waiting",
                               f"for {job.waiting_on} job(s) of its flow to complete"))
    elif job.run_at > job.created_at and (
            job.started_at is None or job.run_at < job.started_at) and \
            job.run_at.timestamp() < WAITING_RUN_AT:
        events.append(Timeline(job.run_at, "due", "scheduled to run"))
    for e in job.errors:
        events.append(Timeline(e.at, f"attempt {e.attempt} {e.reason.value}",
                               f"{e.type}: {e.message}"))
    if job.started_at is not None:
        events.append(Timeline(job.started_at, f"attempt {job.attempt} started",
                               job.worker_id or ""))
    if job.finished_at is not None:
        events.append(Timeline(job.finished_at, job.state.value,
                               job.reason.value if job.reason else ""))
    elif job.updated_at not in {e.at for e in events}:
        events.append(Timeline(job.updated_at, f"now {job.state.value}"))
    return sorted(events, key=lambda e: e.at)


def when(value: datetime | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def pretty(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return repr(value)


def as_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def task_fields(task: Task[Any, Any]) -> list[Field]:
    """The enqueue form's fields for `task`."""
    return fields_of(task.signature.json_schema(), defaults_of(task.func))
