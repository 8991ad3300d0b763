"""`Progress.percent`: one clean number (2 decimals) on every surface, 100 only when done."""

from __future__ import annotations

import orjson
import pytest

from backburner.job import Progress


@pytest.mark.parametrize(("current", "total", "percent"), [
    (1, 6, 16.67), (2, 3, 66.67), (1, 3, 33.33), (29, 100, 29.0), (5, 5, 100.0),
    (9999, 10000, 99.99), (99999, 100000, 99.99), (7, 5, 100.0), (-1, 5, 0.0),
    (0, 5, 0.0), (1, 0, None), (1, None, None), (0.5, 1.5, 33.33),
])
def test_progress_percent_is_rounded_to_two_decimals(
    current: float, total: float | None, percent: float | None
) -> None:
    value = Progress(current, total).percent
    assert value == percent
    if value is not None:
        assert len(orjson.dumps(value)) <= len("99.99")  # never 16.666666666666668
