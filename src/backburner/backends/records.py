"""Turning stored rows into `JobRecord`s, shared by the SQL backends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backburner import codec
from backburner.errors import ConfigurationError
from backburner.job import AttemptError, FailureReason, JobRecord, JobState, Progress, timestamp
from backburner.tracing import strip


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
        kwargs=strip(stored_json(row["kwargs"], {})),
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
        flow_id=_optional(row, "flow_id"),
        depends_on=id_list(_optional(row, "depends_on")),
        dependents=id_list(_optional(row, "dependents")),
        waiting_on=int(_optional(row, "waiting_on") or 0),
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


SCAN_WINDOW = 5_000
"""How many jobs (matching the filter's states, task and queue) one listing page reads at
most to check the predicates of a filter that `scans` (search, creation time): a page of a
rare search over a million jobs then costs a bounded read, and the caller goes on from its
cursor."""


def fold(text: object) -> str | None:
    """Case folding for search, the same on every store (SQLite's lower() is ASCII only, so
    the SQLite backend registers this function)."""
    return None if text is None else str(text).lower()


def search_hit(
    needle: str, texts: Iterable[str | None], errors: Iterable[Mapping[str, Any]]
) -> bool:
    """Whether the folded `needle` is in one of `texts` (stored JSON: args, kwargs, result)
    or in an error's type or message, ignoring case. The stores that filter in Python
    (memory, Redis) use this; the SQL stores say the same in SQL."""
    for text in texts:
        if text is not None and needle in text.lower():
            return True
    for error in errors:
        for name in ("type", "message"):
            value = error.get(name)
            if isinstance(value, str) and needle in value.lower():
                return True
    return False


def scanned_match(
    filter: Any, created_at: float, texts: Iterable[str | None],
    errors: Iterable[Mapping[str, Any]],
) -> bool:
    """The predicates of a `JobFilter` that are checked job by job."""
    if filter.created_after is not None and created_at < filter.created_after:
        return False
    if filter.created_before is not None and created_at >= filter.created_before:
        return False
    if filter.search:
        return search_hit(filter.search.lower(), texts, errors)
    return True


def released_args(args: str, receives: str | None, results: Sequence[str | None]) -> str:
    """The stored positional arguments (a JSON array) of a job of a flow being released:
    what it `receives` put first (see `NewJob.receives`). `results`: the stored results
    (JSON) of its dependencies, in `depends_on` order. String surgery, like the Lua side:
    the stored arguments are kept byte for byte."""
    if receives is None:
        return args
    if receives == "result":
        given = results[0] if results and results[0] is not None else "null"
    else:
        given = "[" + ",".join(r if r is not None else "null" for r in results) + "]"
    rest = args.strip()[1:-1].strip()
    return f"[{given},{rest}]" if rest else f"[{given}]"


def dependency_error(job_id: str, state: str, now: float) -> dict[str, Any]:
    """The error entry of a job cancelled because `job_id`, which it waited for, ended in
    `state` (failed, cancelled) or was deleted before it ran."""
    return {
        "attempt": 0,
        "type": "DependencyFailed",
        "message": f"job {job_id}, which this job waited for, did not complete: {state}",
        "traceback": None,
        "reason": "dependency_failed",
        "at": now,
    }


def id_list(value: Any) -> tuple[str, ...]:
    """A stored JSON array of job ids (None: empty)."""
    loaded = stored_json(value, [])
    return tuple(str(v) for v in loaded) if isinstance(loaded, list) else ()
