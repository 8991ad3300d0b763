"""S3's reports: what the demo's jobs did over a span of time, counted from the job store
through the app's own API (newest first, stopping at the span's start)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from backburner import Backburner

REGISTRATION_TASK = "demo.send_welcome"
"""Every `POST /register` enqueues one welcome mail: their count is the registrations'."""
MAX_SCANNED = 100_000
"""Most jobs one report reads (the count says so when it stopped there)."""


async def summarize(jobs: Backburner, start: datetime, end: datetime) -> dict[str, Any]:
    """Jobs created in [start, end): how many, per task and per state, registrations and
    failures among them."""
    by_task: Counter[str] = Counter()
    by_state: Counter[str] = Counter()
    cursor: str | None = None
    scanned = 0
    complete = True
    while True:
        page = await jobs.list_jobs(limit=1000, cursor=cursor)
        older = False
        for record in page.jobs:
            scanned += 1
            if record.created_at < start:
                older = True  # newest first: nothing after it is in the span
                break
            if record.created_at < end:
                by_task[record.task] += 1
                by_state[record.state.value] += 1
        if older or page.next_cursor is None:
            break
        if scanned >= MAX_SCANNED:
            complete = False
            break
        cursor = page.next_cursor
    return {
        "from": start.isoformat(), "until": end.isoformat(),
        "jobs": sum(by_task.values()), "registrations": by_task[REGISTRATION_TASK],
        "failed": by_state["failed"], "by_state": dict(sorted(by_state.items())),
        "by_task": dict(sorted(by_task.items())), "complete": complete,
    }


async def daily_report(jobs: Backburner, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    """Yesterday's numbers in `tz` (the report's purpose), and today's so far (so a report
    triggered by hand shows something in a fresh demo)."""
    today = now.astimezone(tz).date()
    midnight = datetime.combine(today, time(), tz)
    # Midnight of the previous local day, right across a DST change too.
    yesterday = datetime.combine(today - timedelta(days=1), time(), tz)
    return {
        "tz": tz.key,
        "generated_at": now.astimezone(tz).isoformat(timespec="seconds"),
        "yesterday": {"day": yesterday.date().isoformat(),
                      **await summarize(jobs, yesterday, midnight)},
        "today": {"day": today.isoformat(), **await summarize(jobs, midnight, now)},
    }
