from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backburner import Backoff


def test_nominal_delays_grow_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(base=1, factor=2, maximum=10, jitter=0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.nominal(10**6) == 10


@given(
    base=st.floats(0, 100), factor=st.floats(1, 10), retry=st.integers(1, 10_000),
    jitter=st.floats(0, 1), seed=st.integers(),
)
def test_jittered_delay_stays_within_the_documented_band(
    base: float, factor: float, retry: int, jitter: float, seed: int
) -> None:
    backoff = Backoff(base=base, factor=factor, maximum=3600, jitter=jitter)
    nominal = backoff.nominal(retry)
    delay = backoff.delay(retry, random.Random(seed))
    assert nominal * (1 - jitter) - 1e-9 <= delay <= nominal * (1 + jitter) + 1e-9
    assert nominal <= 3600


@pytest.mark.parametrize(
    "kwargs", [{"base": -1}, {"factor": 0.5}, {"jitter": 2}, {"maximum": -3}]
)
def test_invalid_backoff_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff needs"):
        Backoff(**kwargs)
