"""The rules of unique keys (`backburner.unique`), written once for every store.

Whether a job still holds its key (`holds_key`), what an insert of a held key answers
(`answer_insert`) and whether a retried job takes its key back (`keeps_key_on_retry`). The
memory store calls these directly. The SQL stores keep the same predicate as the partial
unique index that makes one live holder per key atomic under concurrent inserts (a rule read
in Python could not stop an insert still in flight), and the Redis store keeps it in Lua;
tests/contract/test_transition_rules_model.py holds all of them to these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from backburner.backends.protocol import Inserted
from backburner.job import JobState
from backburner.unique import UniqueScope

_WAITING = (JobState.PENDING, JobState.SCHEDULED)
_LIVE = (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING)


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """What the rules read of the job that took a key last."""

    id: str
    state: JobState
    scope: UniqueScope
    attempt: int
    unique_until: float | None
    """`PERIOD` scope: when the hold ends, by the store's clock."""


def holds_key(holder: KeyHolder, now: float) -> bool:
    """Whether `holder` still holds its key: by its own scope, until `unique_until`
    (`PERIOD`), while never claimed and waiting (`QUEUED`), while not terminal (`ACTIVE`)."""
    if holder.scope is UniqueScope.PERIOD:
        return holder.unique_until is not None and holder.unique_until > now
    if holder.scope is UniqueScope.QUEUED:
        return holder.state in _WAITING and holder.attempt == 0
    return holder.state in _LIVE


def answer_insert(holder: KeyHolder | None, now: float) -> Inserted | None:
    """What an insert of a job whose key `holder` took last answers: the holder's id and
    state while it holds the key (nothing is stored), None when the new job is stored and
    takes the key."""
    if holder is not None and holds_key(holder, now):
        return Inserted(holder.id, holder.state)
    return None


def keeps_key_on_retry(job_id: str, holder: KeyHolder | None, now: float) -> bool:
    """Whether a job put back by `retry()` holds its key again: yes unless another job took
    the key meanwhile and still holds it (then it runs without a key, for good)."""
    return holder is None or holder.id == job_id or not holds_key(holder, now)
