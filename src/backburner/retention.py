"""Retention: how long finished jobs are kept, and the pruning the housekeeping leader does.

Only the elected leader prunes (one worker per store, see `Worker`), every
`Retention.interval`, in bounded batches (`Retention.batch` jobs per store call, yielding
between batches), so storage stays flat under a constant load and no single call holds the
store for long. Ages are judged by the store's clock against `finished_at`.

Periodic ticks: a tick's job holds its unique key for the schedule's catch-up window plus an
hour (`Schedule.key_for`), and deleting the job would free the key, letting a late scheduler
enqueue that tick a second time. So the store never prunes a job whose period-scoped key is
still held: a tick is kept at least max(retention, catch-up window + 1 h).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from backburner.errors import ConfigurationError
from backburner.job import JobState

if TYPE_CHECKING:
    from backburner.backends.protocol import Backend

log = logging.getLogger("backburner.retention")

Age = timedelta | float | None
"""A duration (timedelta or seconds); None keeps jobs forever."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs are kept, per end state (None: forever).

        Backburner(url, retention=Retention(completed=timedelta(hours=1)))
        Backburner(url, retention=Retention.forever())     # never prune
    """

    completed: Age = timedelta(hours=24)
    failed: Age = timedelta(days=7)
    cancelled: Age = timedelta(days=7)
    interval: timedelta | float = timedelta(minutes=1)
    """How often the leader prunes."""
    batch: int = 1000
    """Most jobs deleted by one store call."""

    def __post_init__(self) -> None:
        for field in ("completed", "failed", "cancelled"):
            value = getattr(self, field)
            if value is not None:
                _seconds(f"retention {field}", value, allow_zero=True)
        _seconds("retention interval", self.interval, allow_zero=False)
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise ConfigurationError(f"retention batch must be an integer >= 1, not "
                                     f"{self.batch!r}")

    @classmethod
    def forever(cls) -> Retention:
        """Keep every finished job (nothing is pruned)."""
        return cls(completed=None, failed=None, cancelled=None)

    @property
    def ages(self) -> dict[JobState, float]:
        """Seconds after finishing each state's jobs are pruned; kept-forever states absent."""
        found = {
            JobState.COMPLETED: self.completed, JobState.FAILED: self.failed,
            JobState.CANCELLED: self.cancelled,
        }
        return {s: _seconds(s.value, v, True) for s, v in found.items() if v is not None}

    @property
    def interval_seconds(self) -> float:
        return _seconds("retention interval", self.interval, allow_zero=False)


def _seconds(what: str, value: object, allow_zero: bool) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(f"{what} must be a timedelta or seconds, not {value!r}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigurationError(
            f"{what} must be a finite duration {'>= 0' if allow_zero else '> 0'}, "
            f"not {value!r}"
        )
    return seconds


async def prune_expired(backend: Backend, retention: Retention) -> int:
    """Delete every finished job past its retention, batch after batch; return how many."""
    ages = retention.ages
    if not ages:
        return 0
    total = 0
    while True:
        pruned = await backend.prune(ages, retention.batch)
        total += pruned
        if pruned < retention.batch:
            break
        # A backlog: let the hot path (claims, acks on this loop and store) in between.
        await asyncio.sleep(0)
    if total:
        log.info("pruned %d finished job(s) past their retention", total)
    return total
