"""The rules of an attempt that ends badly (`Backend.fail`), written once for every store.

The core decides the policy (whether a failure is retried, and after how long: `retry_in`);
the store applies it with these rules: a retried job is `scheduled` again `retry_in` seconds
from now by the store's clock, its failure counted if the attempt `counts`; otherwise it ends
`failed`, or `cancelled` when the attempt was stopped by a cancel. The memory store calls
`plan_failure`; the SQL stores and the Redis Lua port apply the same in one statement or
script (the hot path) and use `ended_state`; tests/contract/test_transition_rules_model.py
holds them all to these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from backburner.backends.protocol import Failure
from backburner.job import FailureReason, JobState


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    state: JobState
    """`scheduled` (retried) or the terminal state."""
    run_at: float | None
    """When a retried job may run again; None when it ended."""
    reason: FailureReason | None
    """Stored on an ended job; None on a retried one."""
    failures_added: int
    """What the attempt adds to the job's failure count."""


def ended_state(reason: FailureReason) -> JobState:
    """The terminal state of a job whose last attempt ended for `reason`."""
    return JobState.CANCELLED if reason is FailureReason.CANCELLED else JobState.FAILED


def plan_failure(item: Failure, now: float) -> AttemptEnd:
    added = 1 if item.counts else 0
    if item.retry_in is not None:
        return AttemptEnd(JobState.SCHEDULED, now + item.retry_in, None, added)
    return AttemptEnd(ended_state(item.reason), None, item.reason, added)
