"""Turning stored rows into `JobRecord`s, shared by the SQL backends."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from backburner import codec
from backburner.errors import ConfigurationError
from backburner.job import AttemptError, FailureReason, JobRecord, JobState, Progress, timestamp

T = TypeVar("T")
log = logging.getLogger("backburner.backends")


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


def stored_meta(value: Any) -> dict[str, Any]:
    """A job's stored meta (NULL or absent: empty). Anything but a JSON object reads as
    empty: meta never decides how a job runs (a carrier that cannot be read only leaves the
    attempt's span without a parent), so a row written by hand is not marked for it."""
    loaded = stored_json(value, {})
    return loaded if isinstance(loaded, dict) else {}


def record_from_row(
    row: Mapping[str, Any], errors_read: Callable[[Any], Any] | None = None
) -> JobRecord:
    """The record of a stored row (`errors_read`: how the store's error entries are read
    back, see postgres/text_escape.py).

    A row written by something other than Backburner may hold fields of the wrong type
    (`priority='high'`, a missing `max_attempts`). Such a row never makes a read fail for the
    whole store: it is shown, each unreadable field with a neutral value (0, None, the epoch,
    state `failed`), marked by a last error entry of type `InvalidRow` and reason
    `invalid_payload` naming the fields, and a warning is logged. A worker never runs such a
    job: the claim fails it (see `claim_problems`)."""
    read = _Reader(row)
    errors = stored_json(read.raw("errors"), [])
    if errors_read is not None:
        errors = errors_read(errors)
    progress = stored_json(read.raw("progress"), None)
    created_at = read.time("created_at")
    record = JobRecord(
        id=str(row["id"]),
        task=read.text("task"),
        queue=read.text("queue"),
        priority=read.integer("priority"),
        state=read.parse("state", JobState, JobState.FAILED),
        args=stored_json(read.raw("args"), []),
        kwargs=stored_json(read.raw("kwargs"), {}),
        attempt=read.integer("attempt"),
        max_attempts=read.integer("max_attempts"),
        failures=read.integer("failures"),
        lost=read.integer("lost"),
        timeout=read.number("timeout"),
        errors=read.errors(errors),
        result=stored_json(read.raw("result"), None),
        reason=read.parse("reason", FailureReason, None),
        progress=read.progress(progress),
        worker_id=read.raw("worker_id"),
        cancel_requested=read.integer("cancel_requested") != 0,
        created_at=created_at,
        updated_at=read.time("updated_at"),
        run_at=read.time("run_at"),
        started_at=read.optional_time("started_at"),
        finished_at=read.optional_time("finished_at"),
        lease_until=read.optional_time("lease_until"),
        unique_key=read.raw("unique_key"),
        flow_id=read.raw("flow_id"),
        depends_on=id_list(read.raw("depends_on")),
        dependents=id_list(read.raw("dependents")),
        waiting_on=read.integer("waiting_on"),
        meta=stored_meta(read.raw("meta")),
    )
    if not read.bad:
        return record
    log.warning("job %r: stored fields %s are not what Backburner writes; shown with neutral "
                "values, marked InvalidRow", record.id, ", ".join(read.bad))
    marker = AttemptError(
        attempt=record.attempt, type=INVALID_ROW,
        message=f"stored fields not readable: {', '.join(read.bad)}", traceback=None,
        reason=FailureReason.INVALID_PAYLOAD, at=created_at,
    )
    return replace(record, errors=(*record.errors, marker))


INVALID_ROW = "InvalidRow"
"""The error type that marks a record read from a row with unreadable fields."""

_EPOCH = datetime.fromtimestamp(0, UTC)
_CONVERSION = (TypeError, ValueError, OverflowError, OSError, KeyError)


class _Reader:
    """Reads the fields of one row, noting those it could not read."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row
        self.bad: list[str] = []

    def raw(self, name: str) -> Any:
        """A column that rows written before its migration (or by hand) may lack."""
        try:
            return self.row[name]
        except (KeyError, IndexError):  # sqlite3.Row raises IndexError for an unknown name
            return None

    def text(self, name: str) -> str:
        value = self.raw(name)
        if isinstance(value, str):
            return value
        self.bad.append(name)
        return "" if value is None else str(value)

    def integer(self, name: str) -> int:
        value = self.raw(name)
        if value is None or value == "":
            return 0  # absent (an older row, a Redis hash without the field): the default
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        except _CONVERSION:
            self.bad.append(name)
            return 0

    def number(self, name: str) -> float | None:
        value = self.raw(name)
        if value is None or value == "":
            return None
        try:
            number = float(value)
        except _CONVERSION:
            number = math.nan
        if math.isfinite(number):
            return number
        self.bad.append(name)
        return None

    def optional_time(self, name: str) -> datetime | None:
        number = self.number(name)
        if number is None:
            return None
        try:
            return timestamp(number)
        except _CONVERSION:
            self.bad.append(name)
            return None

    def time(self, name: str) -> datetime:
        value = self.optional_time(name)
        if value is None:
            if name not in self.bad:
                self.bad.append(name)
            return _EPOCH
        return value

    def parse(self, name: str, kind: Callable[[Any], T], default: T) -> T:
        value = self.raw(name)
        if value is None or value == "":
            if default is not None:
                self.bad.append(name)
            return default
        try:
            return kind(value)
        except _CONVERSION:
            self.bad.append(name)
            return default

    def errors(self, entries: Any) -> tuple[AttemptError, ...]:
        if not isinstance(entries, list):
            self.bad.append("errors")
            return ()
        read = []
        for entry in entries:
            try:
                read.append(AttemptError.from_json(entry))
            except (*_CONVERSION, AttributeError):
                if "errors" not in self.bad:
                    self.bad.append("errors")
        return tuple(read)

    def progress(self, data: Any) -> Progress | None:
        try:
            return Progress.from_json(data)
        except _CONVERSION:
            self.bad.append("progress")
            return None


_CLAIMED_INTS = ("priority", "attempt", "max_attempts", "failures", "lost")
_CLAIMED_TIMES = ("created_at", "run_at")


def claim_problems(fields: Mapping[str, Any]) -> list[str]:
    """The fields of a claimed job (see `ClaimedJob`) that are not what Backburner writes:
    such a job is failed by the claim with `invalid_payload` instead of being handed to a
    worker, whose bookkeeping would trip over them (R20: untrusted rows never take a worker
    down). Strings of numbers (Redis) are fine."""
    bad = []
    for name in _CLAIMED_INTS:
        value = fields.get(name)
        try:
            if isinstance(value, bool) or value is None or int(value) != float(value):
                raise ValueError(value)
        except _CONVERSION:
            bad.append(name)
    for name in _CLAIMED_TIMES:
        value = fields.get(name)
        try:
            if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError(value)
        except _CONVERSION:
            bad.append(name)
    timeout = fields.get("timeout")
    # Not `not in (None, "")`: mypy 1.11 does not narrow None away through that.
    if timeout is not None and timeout != "":
        try:
            if isinstance(timeout, bool) or not float(timeout) > 0:
                raise ValueError(timeout)
        except _CONVERSION:
            bad.append("timeout")
    return bad


def invalid_row_error(problems: Sequence[str], attempt: int, now: float) -> dict[str, Any]:
    """The stored error entry of a job failed by a claim because of `claim_problems`."""
    return {
        "attempt": attempt,
        "type": INVALID_ROW,
        "message": f"stored fields not readable: {', '.join(problems)}",
        "traceback": None,
        "reason": FailureReason.INVALID_PAYLOAD.value,
        "at": now,
    }


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


def id_list(value: Any) -> tuple[str, ...]:
    """A stored JSON array of job ids (None: empty)."""
    loaded = stored_json(value, [])
    return tuple(str(v) for v in loaded) if isinstance(loaded, list) else ()
