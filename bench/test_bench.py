"""Smoke tests for the benchmark itself: it runs end to end and its bookkeeping is right.
Never about speed: no timing is asserted here. Run with `pytest bench`."""

from __future__ import annotations

import cProfile
import math
import pstats

import pytest
import run
from common import percentile
from profile_drain import Attribution, anchor_of
from report import Row, table


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_rows_compare_against_targets_in_the_right_direction() -> None:
    assert Row("drain", "jobs/s", 7_000.0, target=6_000.0).meets() is True
    assert Row("drain", "jobs/s", 5_000.0, target=6_000.0).meets() is False
    assert Row("p50", "ms", 0.5, target=1.0).meets() is True
    assert Row("p50", "ms", 2.0, target=1.0).meets() is False
    assert Row("p99", "ms", 2.0).meets() is None
    text = table([Row("drain", "jobs/s", 12_000.0, 6_000.0, 6_000.0)])
    assert "| 12,000 | 6,000 | 2.00x | ≥ 6,000 | yes |" in text


def test_attribution_charges_helpers_to_their_anchor() -> None:
    def helper() -> int:
        return sum(range(2_000))

    def _claim() -> int:  # named like the backend's claim, in a file that is not the backend
        return helper()

    profiler = cProfile.Profile()
    profiler.runcall(_claim)
    stats = pstats.Stats(profiler)
    categories = Attribution(stats).categories()
    assert sum(categories.values()) == pytest.approx(stats.total_tt)  # type: ignore[attr-defined]
    assert anchor_of(("/x/src/backburner/backends/sqlite/backend.py", 1, "_claim")) == (
        "claim SQL (incl. BEGIN/COMMIT)"
    )
    assert anchor_of(("/x/src/backburner/backends/sqlite/backend.py", 9, "<listcomp>")) is None


def test_quick_run_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    run.main(["--jobs", "200", "--samples", "5", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "| Drain, 1 worker process | jobs/s |" in out
    assert "| Latency p50, worker in another process | ms |" in out
