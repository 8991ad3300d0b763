"""What the pages read from a request: the job filter (query string or posted form), page
sizes, the notice of a redirect after an action, and a bounded form body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request

from backburner.app import Backburner
from backburner.backends.protocol import JobFilter
from backburner.errors import ConfigurationError

MAX_FORM_BYTES = 256 * 1024
NOTICES = {
    "retry": "retried", "cancel": "cancelled", "delete": "deleted", "pause": "paused",
    "resume": "resumed", "trigger": "triggered", "enqueue": "enqueued",
}


def filters(source: Any) -> dict[str, Any]:
    """The job filter of a query string or a posted form, as text (what the form shows and
    links carry): state (repeated), task, queue, q (search), after/before (UTC times)."""
    def get(key: str, size: int) -> str:
        if isinstance(source, dict):
            return (one(source, key) or "").strip()[:size]
        return (source.get(key) or "").strip()[:size]

    states = source.get("state", []) if isinstance(source, dict) else source.getlist("state")
    return {"state": [s for s in states if s][:6], "task": get("task", 500),
            "queue": get("queue", 200), "q": get("q", 200), "after": get("after", 40),
            "before": get("before", 40)}


def job_filter(app: Backburner, query: dict[str, Any]) -> JobFilter:
    """A checked filter (ConfigurationError naming a bad value)."""
    return app.job_filter(
        states=query["state"], task=query["task"] or None, queue=query["queue"] or None,
        search=query["q"] or None, created_after=_time(query["after"], "after"),
        created_before=_time(query["before"], "before"))


def _time(text: str, label: str) -> datetime | None:
    """A time from the form (`datetime-local`: no zone, taken as UTC) or an ISO string."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"{label}: not a date and time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def page_size(raw: str | None) -> int:
    try:
        return max(1, min(200, int(raw or 50)))
    except ValueError:
        return 50


def integer(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def one(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def here(request: Request) -> str:
    """This page's path and query without a previous notice: where an action goes back to."""
    kept = [(k, v) for k, v in request.query_params.multi_items()
            if k not in ("notice", "done", "skipped")]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def notice(request: Request) -> str | None:
    """The message of a redirect after an action: words from a fixed table and two
    numbers, so a link cannot make the dashboard say something of its own."""
    verb = NOTICES.get(request.query_params.get("notice", ""))
    if verb is None:
        return None
    try:
        done = int(request.query_params.get("done", "0"))
        skipped = int(request.query_params.get("skipped", "0"))
    except ValueError:
        return None
    text = f"{done} {verb}"
    if skipped:
        text += f", {skipped} skipped (not in a state that allows it)"
    return text


async def form_body(request: Request) -> bytes:
    """The body of a posted form, refused with 413 past MAX_FORM_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    return bytes(body)
