"""Live job updates for SSE and WebSocket subscribers.

Every update is a snapshot of the job read from the store, never a diff: a subscriber that
missed events (a slow reader, a lossy cross-process notification, a reconnect) is right
again with the next message, and the terminal state is always delivered because the stream
ends only after reading it from the store. Notifications only tell us *when* to read.

The Server-Sent Events frames of the job router and the dashboard are `fastapi.sse` events
(a path operation yielding them with `response_class=EventSourceResponse`); the ones both
send are here, so the wire format is written once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson
from fastapi.sse import ServerSentEvent

from backburner.app import Backburner
from backburner.errors import JobNotFoundError
from backburner.job import JobRecord

Update = tuple[str, dict[str, Any]]
"""(event id, update): what `job_updates` yields for each change."""
RETRY_MS = 2000
"""The reconnection delay a stream asks of `EventSource` first."""


def retry_hint() -> ServerSentEvent:
    """The first frame of a stream: reconnect after `RETRY_MS`."""
    return ServerSentEvent(retry=RETRY_MS)


def keepalive_comment() -> ServerSentEvent:
    """A comment that keeps proxies from closing a silent stream (`: keep-alive`)."""
    return ServerSentEvent(comment="keep-alive")


def signal(event: str) -> ServerSentEvent:
    """An event with no payload (`data: {}`): `unavailable`, `gone`."""
    return ServerSentEvent(event=event, raw_data="{}")


def job_event(data: dict[str, Any], ident: str | None = None) -> ServerSentEvent:
    """An `event: job` frame. The data is orjson's compact text, sent raw (not FastAPI's
    `json.dumps` of `data=`): byte for byte what the clients were written against."""
    return ServerSentEvent(event="job", id=ident, raw_data=orjson.dumps(data).decode())


def update_of(record: JobRecord) -> dict[str, Any]:
    progress = None
    if record.progress is not None:
        progress = {**record.progress.to_json(), "percent": record.progress.percent}
    return {
        "id": record.id,
        "task": record.task,
        "state": record.state.value,
        "attempt": record.attempt,
        "progress": progress,
        "result": record.result if record.is_terminal else None,
        "reason": record.reason.value if record.reason else None,
        "error": record.last_error.message if record.last_error else None,
        "updated_at": record.updated_at.isoformat(),
    }


def event_id(record: JobRecord) -> str:
    """Changes whenever the snapshot does; what `Last-Event-ID` echoes back."""
    progress = record.progress
    marker = f"{progress.current}" if progress else "-"
    return f"{int(record.updated_at.timestamp() * 1_000_000)}.{record.attempt}.{marker}"


async def job_updates(
    app: Backburner,
    job_id: str,
    *,
    keepalive: float = 15.0,
    last_event_id: str | None = None,
    redact: Callable[[JobRecord], JobRecord] | None = None,
) -> AsyncGenerator[Update | None, None]:
    """(event id, update) for the current state and each change after it; None every
    `keepalive` seconds of silence. Ends after the terminal state. Raises JobNotFoundError.
    `redact`: applied to each record before its update is made (the dashboard's hook, so a
    progress message or an error hides what the rendered page hides)."""
    # Subscribe before the first read, so no change can slip between the two.
    with app.backend.notifier.subscribe(["job"], job_id=job_id, maxsize=256) as sub:
        record = await app.get_job(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        sent = last_event_id
        while True:
            current = event_id(record)
            if current != sent:
                sent = current
                yield current, update_of(record if redact is None else redact(record))
            if record.is_terminal:
                return
            if not await sub.wait(keepalive):
                yield None
            sub.drain()
            sub.overflowed = False
            latest = await app.get_job(job_id)
            if latest is None:  # deleted meanwhile
                return
            record = latest
