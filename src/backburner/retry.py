"""When a failed attempt runs again: exponential backoff with jitter."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (n = 1 for the first retry) is
    `min(maximum, base * factor ** (n - 1))`, multiplied by a random factor drawn uniformly
    from `[1 - jitter, 1 + jitter]` so that jobs failing together do not retry together.
    """

    base: float = 1.0
    factor: float = 2.0
    maximum: float = 3600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < 0 or self.factor < 1 or self.maximum < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(
                "Backoff needs base >= 0, factor >= 1, maximum >= 0 and 0 <= jitter <= 1"
            )

    def nominal(self, retry: int) -> float:
        exponent = max(0, retry - 1)
        if self.base == 0 or self.factor == 1:
            return float(min(self.maximum, self.base))
        # Compare in log space: factor ** exponent overflows a float long before it matters.
        log_delay = math.log(self.base) + exponent * math.log(self.factor)
        if self.maximum == 0 or log_delay >= math.log(self.maximum):
            return self.maximum
        if exponent * math.log(self.factor) < 700:  # factor ** exponent fits in a float
            return float(min(self.maximum, self.base * self.factor**exponent))
        return min(self.maximum, math.exp(log_delay))

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        nominal = self.nominal(retry)
        if not self.jitter:
            return nominal
        draw = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return nominal * draw


def as_backoff(value: Backoff | float | int) -> Backoff:
    """`backoff=2.5` means a 2.5 s base with the default factor and jitter."""
    if isinstance(value, Backoff):
        return value
    return Backoff(base=float(value))
