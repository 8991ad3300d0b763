"""What a name, a job id or a filter's text may be, checked at the edge (the app facade and
`JobFilter`), so every surface (Python, HTTP, dashboard, CLI) answers bad input the same
way on every store, before any store sees it. PostgreSQL cannot hold a NUL character in
text at all; the other stores could, but an answer must not depend on the store."""

from __future__ import annotations

from backburner.errors import ConfigurationError

MAX_NAME = 200
"""The longest queue name."""

MAX_JOB_ID = 1000
"""Longer than any id Backburner makes (36 characters) or a store would be asked for."""


def check_name(what: str, value: object) -> str:
    """A queue name: a non-empty string of at most `MAX_NAME` printable characters. Control
    characters (NUL, CR, LF, ...) are refused: a name is shown in listings, logs and HTTP
    headers, where they would forge lines."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise ConfigurationError(
            f"{what} must be a non-empty string of <= {MAX_NAME} printable characters "
            f"(no control characters such as NUL, CR or LF), got {_shown(value)}"
        )
    return value


def check_text(what: str, value: str | None) -> str | None:
    """Free text of a filter (task name, search): any string without a NUL character."""
    if value is not None and (not isinstance(value, str) or "\x00" in value):
        raise ConfigurationError(f"{what} must be a string without NUL, got {_shown(value)}")
    return value


def is_job_id(value: object) -> bool:
    """Whether `value` could name a stored job. Anything else names no job: callers answer
    "no such job", as for an id that is not stored."""
    return isinstance(value, str) and 0 < len(value) <= MAX_JOB_ID and "\x00" not in value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}... ({len(text)} characters)"
