"""Failed jobs grouped by what went wrong, so one broken dependency shows as one line with a
count instead of ten thousand rows, and can be retried in one action.

A group is a fingerprint: the task, the exception type of the job's last error, and its
message with the parts that vary from job to job (numbers, hex ids, UUIDs, quoted strings)
replaced by placeholders:

    ConnectionError("connect to 10.0.0.7:5432 failed after 3.5 s")
    -> "connect to <n>:<n> failed after <n> s"

    groups = await failure_groups(app)            # the most recent 10 000 failed jobs
    await retry_failure_group(app, groups[0].fingerprint)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from backburner.app import Backburner
from backburner.backends.protocol import JobFilter
from backburner.errors import ConfigurationError, JobNotFoundError
from backburner.job import JobRecord, JobState

__all__ = ["FailureGroup", "failure_groups", "fingerprint", "message_template",
           "retry_failure_group"]

JOB_IDS_KEPT = 100
"""How many job ids (the newest) a group lists; `retry_failure_group` finds them all."""

_PAGE = 500

# Order matters: a quoted string may hold digits, a UUID holds hex runs, a hex id digits.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}\b")
# 0x-prefixed, or a run of 8+ hex digits with at least one digit (a word like "deadbeef"
# stays: it has no digit and is more likely a word than an id).
_HEX = re.compile(r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}\b")
# One placeholder for a dotted run (3.5, 10.0.0.7, 1,000): a version or an address varies
# as a whole.
_NUMBER = re.compile(r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")


def message_template(message: str) -> str:
    """`message` with its variable parts replaced by `<str>`, `<uuid>`, `<hex>`, `<n>`."""
    template = _QUOTED.sub("<str>", message)
    template = _UUID.sub("<uuid>", template)
    template = _HEX.sub("<hex>", template)
    return _NUMBER.sub("<n>", template)


def _parts(record: JobRecord) -> tuple[str, str, str]:
    """(task, error type, message template) of a job's last error."""
    error = record.last_error
    if error is None:  # failed without a recorded attempt error: the reason is all we have
        reason = record.reason.value if record.reason else ""
        return record.task, reason, ""
    return record.task, error.type, message_template(error.message)


def fingerprint(record: JobRecord) -> str:
    """A short stable id of what made `record` fail: task, exception type and message
    template of its last error (16 hex digits)."""
    return _digest(*_parts(record))


def _digest(task: str, error_type: str, template: str) -> str:
    return hashlib.sha256(f"{task}\0{error_type}\0{template}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class FailureGroup:
    fingerprint: str
    task: str
    error_type: str
    message_template: str
    count: int
    """Failed jobs of this group among those scanned."""
    first_seen: datetime
    """When the oldest of them ended (its last update)."""
    last_seen: datetime
    sample_job_id: str
    """The newest job of the group: open it for a full message and traceback."""
    sample_message: str
    """That job's last error message as it was."""
    job_ids: tuple[str, ...]
    """The newest `JOB_IDS_KEPT` jobs of the group; `retry_failure_group` retries all."""
    queues: tuple[str, ...]


async def _scan_failed(app: Backburner, scan: int) -> list[JobRecord]:
    if scan < 1:
        raise ConfigurationError("scan must be >= 1")
    found: list[JobRecord] = []
    cursor: str | None = None
    while len(found) < scan:
        page = await app.list_jobs(
            filter=JobFilter(states=(JobState.FAILED,)), limit=min(_PAGE, scan - len(found)),
            cursor=cursor,
        )
        found += page.jobs
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found


async def failure_groups(app: Backburner, *, scan: int = 10_000) -> list[FailureGroup]:
    """The groups of the most recent `scan` failed jobs, the largest first (then the most
    recently seen). The scan reads `scan` jobs in pages; nothing is stored."""
    groups: dict[str, list[JobRecord]] = {}
    parts: dict[str, tuple[str, str, str]] = {}
    for record in await _scan_failed(app, scan):  # newest first
        key_parts = _parts(record)
        key = _digest(*key_parts)
        parts.setdefault(key, key_parts)
        groups.setdefault(key, []).append(record)
    result = []
    for key, records in groups.items():
        task, error_type, template = parts[key]
        newest = records[0]
        last = newest.last_error
        result.append(
            FailureGroup(
                fingerprint=key, task=task, error_type=error_type, message_template=template,
                count=len(records),
                first_seen=min(r.updated_at for r in records),
                last_seen=max(r.updated_at for r in records),
                sample_job_id=newest.id,
                sample_message=last.message if last else "",
                job_ids=tuple(r.id for r in records[:JOB_IDS_KEPT]),
                queues=tuple(sorted({r.queue for r in records})),
            )
        )
    result.sort(key=lambda g: (-g.count, -g.last_seen.timestamp()))
    return result


async def retry_failure_group(app: Backburner, fingerprint: str, *, scan: int = 10_000) -> int:
    """Retry every job of the group among the most recent `scan` failed jobs; returns how
    many went back to pending (a job retried or deleted meanwhile by someone else is not
    counted)."""
    ids = [r.id for r in await _scan_failed(app, scan) if _digest(*_parts(r)) == fingerprint]
    retried = 0
    for job_id in ids:
        try:
            if await app.retry(job_id) is JobState.PENDING:
                retried += 1
        except JobNotFoundError:
            continue
    return retried
