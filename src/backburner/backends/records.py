"""Turning stored rows into `JobRecord`s, shared by the SQL backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backburner import codec
from backburner.errors import ConfigurationError
from backburner.job import AttemptError, FailureReason, JobRecord, JobState, Progress, timestamp


def stored_json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        try:
            return codec.loads(value)
        except codec.PayloadError:
            # Rows written by something other than Backburner are shown, not trusted.
            return value
    return value


def record_from_row(row: Mapping[str, Any]) -> JobRecord:
    errors = stored_json(row["errors"], [])
    progress = stored_json(row["progress"], None)
    reason = row["reason"]
    return JobRecord(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        priority=int(row["priority"]),
        state=JobState(row["state"]),
        args=stored_json(row["args"], []),
        kwargs=stored_json(row["kwargs"], {}),
        attempt=int(row["attempt"]),
        max_attempts=int(row["max_attempts"]),
        failures=int(row["failures"]),
        lost=int(row["lost"]),
        timeout=row["timeout"],
        errors=tuple(AttemptError.from_json(e) for e in errors if isinstance(e, dict)),
        result=stored_json(row["result"], None),
        reason=FailureReason(reason) if reason else None,
        progress=Progress.from_json(progress) if isinstance(progress, dict) else None,
        worker_id=row["worker_id"],
        cancel_requested=bool(row["cancel_requested"]),
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        run_at=_ts(row["run_at"]),
        started_at=timestamp(row["started_at"]),
        finished_at=timestamp(row["finished_at"]),
        lease_until=timestamp(row["lease_until"]),
        unique_key=_optional(row, "unique_key"),
    )


def _optional(row: Mapping[str, Any], name: str) -> Any:
    """A column that rows written before its migration (or by hand) may lack."""
    try:
        return row[name]
    except (KeyError, IndexError):  # sqlite3.Row raises IndexError for an unknown name
        return None


def _ts(value: float) -> Any:
    result = timestamp(value)
    assert result is not None
    return result


def error_entry(
    error: Mapping[str, Any], attempt: int, reason: FailureReason, now: float
) -> dict[str, Any]:
    """The stored form of one attempt's error (see `AttemptError`)."""
    return {
        "attempt": attempt,
        "type": str(error.get("type", "")),
        "message": str(error.get("message", "")),
        "traceback": error.get("traceback"),
        "reason": reason.value,
        "at": now,
    }


_MAX_SEQ = 2**63 - 1


def seq_cursor(cursor: str | None) -> int | None:
    """The position a listing cursor names, for the stores whose cursor is a sequence number.
    Anything else (not a number, or past a signed 64-bit integer, which no store can compare
    with) is refused as a bad argument, never left to the store to fail on."""
    if cursor is None:
        return None
    try:
        value = int(cursor)
    except ValueError:
        value = -1
    if not 0 <= value <= _MAX_SEQ:
        raise ConfigurationError(f"invalid cursor {cursor!r}")
    return value
