"""`build_job` has a shortcut for a plain `task.enqueue` (`DEFAULT_OPTIONS`): it must make the
job the general way makes with options that are all the defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from backburner import Backburner
from backburner.enqueue import DEFAULT_OPTIONS, EnqueueOptions, build_job


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"queue": "q2", "priority": -3, "retries": 0, "timeout": 2.5},
        {"rate_limit": "10/s", "concurrency": 2},
        {"concurrency": 1, "concurrency_per_key": 1},
        {"concurrency_per_key": 2, "concurrency_key": lambda a, b="x": f"k{a}"},
    ],
)
def test_plain_enqueue_makes_the_job_the_general_way_makes(settings: dict[str, Any]) -> None:
    app = Backburner("memory://")

    @app.task(name="t.job", **settings)
    async def job(a: int, b: str = "x") -> None: ...

    general = EnqueueOptions()
    assert general == DEFAULT_OPTIONS and general is not DEFAULT_OPTIONS
    for args, kwargs in [((1,), {}), ((1, "y"), {}), ((), {"a": 2, "b": "z"})]:
        fast = build_job(job, DEFAULT_OPTIONS, args, kwargs)
        slow = build_job(job, general, args, kwargs)
        assert fast.id != slow.id
        assert dataclasses.replace(fast, id=slow.id) == slow
