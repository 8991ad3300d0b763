"""Global limits of a task, enforced by the store for every worker of every machine.

- `concurrency=N`: at most N jobs of the task running at once;
- `concurrency_per_key=N` with `options(concurrency_key="customer:42")` (or a task-level
  `concurrency_key=` callable of the task's arguments): at most N running per key;
- `rate_limit="100/m"` (or "10/s", "500/h", `(count, timedelta)`): at most `count` jobs of
  the task started in any window of `period` seconds.

Like unique keys, limits count the jobs of one task *in one queue* (a task's jobs normally
share its queue): that is what lets the Redis backend keep every counter in the queue's own
hash slot.

The limits travel with each job (the store keeps them on the job's row), so the store can
judge them at claim time without knowing the app's tasks. A job over a concurrency limit
stays `pending`, parked out of the claim's way (no head-of-line blocking: the jobs behind it
are claimed), until a slot of its task or key frees; the transition that frees the slot
(complete, fail, release, rescue) hands it to the next parked job and wakes the workers of
its queue. A job over its rate is `scheduled` again for the moment the window has room.
Jobs without limits pay nothing: the store only looks at limits of jobs that have them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from backburner.errors import ConfigurationError

MAX_KEY_LENGTH = 500

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
          "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    """Most jobs started in any window of `period` seconds."""
    period: float


def parse_rate_limit(task: str, value: Any) -> RateLimit | None:
    """`"100/m"`, `"10/s"`, `"500/h"`, `"1000/d"`, `"5/10s"`, or `(count, timedelta or
    seconds)`; None: no rate limit. Anything else is a ConfigurationError naming it."""
    if value is None:
        return None
    count: Any
    period: Any
    if isinstance(value, str):
        match = _SPEC.match(value.lower())
        unit = _UNITS.get(match.group(3)) if match else None
        if match is None or unit is None:
            raise ConfigurationError(
                f"{task}: rate_limit {value!r} is not 'N/s', 'N/m', 'N/h' or 'N/d'"
            )
        count = int(match.group(1))
        period = float(match.group(2) or 1) * unit
    elif isinstance(value, tuple) and len(value) == 2:
        count, period = value
        if isinstance(period, timedelta):
            period = period.total_seconds()
    else:
        raise ConfigurationError(
            f"{task}: rate_limit {value!r} must be like '100/m' or (count, timedelta)"
        )
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        raise ConfigurationError(f"{task}: rate_limit {value!r}: count must be 1..1000000")
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not (
        math.isfinite(period) and period > 0
    ):
        raise ConfigurationError(f"{task}: rate_limit {value!r}: period must be positive")
    return RateLimit(count, float(period))


def check_concurrency(task: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    # Returned from the positive test: every supported mypy narrows `value` to int there.
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1_000_000:
        return value
    raise ConfigurationError(f"{task}: {name} must be an int between 1 and 1000000")


def check_key(task: str, key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ConfigurationError(
            f"{task}: concurrency_key must be a non-empty string of <= {MAX_KEY_LENGTH} chars, "
            f"got {key!r}"
        )
    return key
