"""Fixtures of the real-process reliability tests (docs/reliability.md). Each test gets a
`Scenario`: its own SQLite file, history file and worker processes, all killed at teardown.

Faults are drawn from `random.Random(seed)`; set RELIABILITY_SEED to replay a failing run."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_harness import Scenario
from services import SERVER_BACKENDS

ALL_KINDS = ["sqlite", *SERVER_BACKENDS]
"""For `@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)`."""


@pytest.fixture
def seed() -> int:
    given = os.environ.get("RELIABILITY_SEED")
    value = int(given) if given else random.SystemRandom().randrange(2**32)
    print(f"reliability seed {value} (replay with RELIABILITY_SEED={value})")
    return value


@pytest.fixture
def rng(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.fixture
def scenario(tmp_path: Path, seed: int, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """SQLite unless the test is parametrised with `kind` (see ALL_KINDS)."""
    kind = getattr(request, "param", "sqlite")
    run = Scenario(tmp_path, seed, kind)
    try:
        yield run
    finally:
        run.close()
