"""Limit options of tasks (backburner.limits): spelling, checks, what a job carries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backburner import Backburner
from backburner.errors import ConfigurationError
from backburner.limits import RateLimit, parse_rate_limit


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("100/m", RateLimit(100, 60.0)),
        ("10/s", RateLimit(10, 1.0)),
        ("500/h", RateLimit(500, 3600.0)),
        ("1000/d", RateLimit(1000, 86400.0)),
        ("5/10s", RateLimit(5, 10.0)),
        (" 7 / minute ", RateLimit(7, 60.0)),
        ((3, timedelta(seconds=2)), RateLimit(3, 2.0)),
        ((3, 0.5), RateLimit(3, 0.5)),
        (None, None),
    ],
)
def test_rate_limit_spellings(spec: object, expected: RateLimit | None) -> None:
    assert parse_rate_limit("t", spec) == expected


@pytest.mark.parametrize(
    "spec", ["100", "100/x", "/m", "0/s", "-1/s", "1.5/s", (0, 1.0), (1, 0), (1, -2.0),
             (1, timedelta(0)), ("1", 1.0), 5, [1, 1.0], (True, 1.0), "1/0s"],
)
def test_bad_rate_limits_name_the_value(spec: object) -> None:
    app = Backburner("memory://")
    with pytest.raises(ConfigurationError, match="rate_limit") as caught:
        app.task(name="t", rate_limit=spec)(lambda: None)  # type: ignore[arg-type]
    assert repr(spec) in str(caught.value)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_concurrency(value: object) -> None:
    app = Backburner("memory://")
    with pytest.raises(ConfigurationError, match="concurrency"):
        app.task(name="t", concurrency=value)(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="concurrency_per_key"):
        app.task(name="u", concurrency_per_key=value)(lambda: None)  # type: ignore[arg-type]


def test_a_key_needs_a_per_key_limit() -> None:
    app = Backburner("memory://")

    @app.task(concurrency=3)
    def plain(n: int) -> None: ...

    with pytest.raises(ConfigurationError, match="concurrency_per_key"):
        plain.options(concurrency_key="customer:1")
    with pytest.raises(ConfigurationError, match="concurrency_per_key"):
        app.task(name="v", concurrency_key=lambda n: str(n))(lambda n: None)


def test_bad_keys() -> None:
    app = Backburner("memory://")

    @app.task(concurrency_per_key=2, concurrency_key=lambda n: n)
    def keyed(n: int) -> None: ...

    for bad in ("", "x" * 501, 42):
        with pytest.raises(ConfigurationError, match="concurrency_key"):
            keyed.options(concurrency_key=bad)  # type: ignore[arg-type]
    # A derived key must be a string too.
    with pytest.raises(ConfigurationError, match="concurrency_key"):
        keyed._new_job(keyed.options()._options, (1,), {})


def test_jobs_carry_their_limits() -> None:
    app = Backburner("memory://")

    @app.task(concurrency=5, concurrency_per_key=2, rate_limit="10/s",
              concurrency_key=lambda customer, **_: f"customer:{customer}")
    def work(customer: int, note: str = "") -> None: ...

    @app.task
    def free() -> None: ...

    job = work._new_job(work.options()._options, (42,), {"note": "x"})
    assert (job.limit_concurrency, job.limit_key, job.limit_key_concurrency) == (
        5, "customer:42", 2
    )
    assert (job.rate_count, job.rate_period) == (10, 1.0)
    explicit = work._new_job(work.options(concurrency_key="vip")._options, (42,), {})
    assert explicit.limit_key == "vip"
    merged = work.options(concurrency_key="vip").options(priority=3)
    assert merged._options.concurrency_key == "vip"
    plain = free._new_job(free.options()._options, (), {})
    assert (plain.limit_concurrency, plain.limit_key, plain.rate_count) == (None, None, None)
