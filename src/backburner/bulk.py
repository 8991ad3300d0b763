"""One action on every job matching a filter: retry, cancel or delete, job by job.

    result = await bulk.apply(app, app.job_filter(task="send_email", states=["failed"]),
                              "retry")
    print(result.matched, result.changed, result.skipped)

Each action applies only to the states where it means something, and the filter is narrowed
to them (jobs in other states are neither touched nor counted):

- `retry`: failed and cancelled jobs (back to pending with a fresh set of attempts);
- `cancel`: pending and scheduled jobs (cancelled at once) and running ones (their worker is
  asked to stop: counted as changed);
- `delete`: finished jobs (completed, failed, cancelled); a running job is never deleted.

Safe while jobs change underneath: the walk pages newest first by the store's cursor, which
a change of state or a deletion never moves, so every job is visited at most once; jobs
created after the action started are newer than its first page and never visited. A job
that left its state meanwhile (someone else retried, a worker finished it) is refused by the
store's own transition and counted as skipped. Each job is one store transition; a bulk
action is not one transaction (a crash half-way leaves the rest untouched: run it again).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from backburner.app import Backburner
from backburner.backends.protocol import JobFilter
from backburner.errors import ConfigurationError, JobNotFoundError
from backburner.job import JobRecord, JobState

__all__ = ["ACTION_STATES", "Action", "BulkResult", "apply", "narrowed"]

Action = Literal["retry", "cancel", "delete"]

ACTION_STATES: dict[str, tuple[JobState, ...]] = {
    "retry": (JobState.FAILED, JobState.CANCELLED),
    "cancel": (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING),
    "delete": (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED),
}
"""The states each action applies to."""

_PAGE = 200


@dataclass(frozen=True, slots=True)
class BulkResult:
    matched: int
    """Jobs that matched the filter, in a state the action applies to, when visited."""
    changed: int
    """Of those, the ones the store changed (for cancel: a running job asked to stop)."""
    skipped: int
    """Matched but refused: the job changed or vanished between listing and action."""


def narrowed(filter: JobFilter, action: str) -> JobFilter | None:
    """`filter` restricted to the states `action` applies to, None when it asks only for
    other states (ConfigurationError for an unknown action). Count this filter to show
    what an action would touch."""
    if action not in get_args(Action):
        raise ConfigurationError(
            f"unknown bulk action {action!r}; expected one of {', '.join(get_args(Action))}"
        )
    valid = ACTION_STATES[action]
    states = tuple(s for s in filter.states if s in valid) if filter.states else valid
    if not states:
        return None
    return dataclasses.replace(filter, states=states)


async def apply(
    app: Backburner, filter: JobFilter, action: Action, *, limit: int | None = None
) -> BulkResult:
    """Apply `action` to every job matching `filter` (narrowed to the action's states, see
    the module docstring), to `limit` jobs at most when given."""
    if limit is not None and limit < 1:
        raise ConfigurationError("limit must be >= 1")
    target = narrowed(filter, action)
    if target is None:
        return BulkResult(0, 0, 0)
    matched = changed = 0
    cursor: str | None = None
    while limit is None or matched < limit:
        page = await app.list_jobs(filter=target, limit=_PAGE, cursor=cursor)
        for record in page.jobs:
            if limit is not None and matched >= limit:
                break
            matched += 1
            if await _act(app, record, action):
                changed += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        # A long action must not starve the event loop (the memory store never yields).
        await asyncio.sleep(0)
    return BulkResult(matched, changed, matched - changed)


async def _act(app: Backburner, record: JobRecord, action: Action) -> bool:
    try:
        if action == "retry":
            return await app.retry(record.id) is JobState.PENDING
        if action == "cancel":
            return await app.cancel(record.id) in (JobState.CANCELLED, JobState.RUNNING)
        # The store deletes any job that is not running: read the state again just before,
        # so a job retried since it was listed is not deleted.
        current = await app.get_job(record.id)
        if current is None or current.state not in ACTION_STATES["delete"]:
            return False
        return await app.delete(record.id)
    except JobNotFoundError:
        return False
