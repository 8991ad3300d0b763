"""Fixtures of the real-process reliability tests (docs/reliability.md). Each test gets a
`Scenario`: its own SQLite file, history file and worker processes, all killed at teardown.

Faults are drawn from `random.Random(seed)`; set RELIABILITY_SEED to replay a failing run."""

from __future__ import annotations

import gc
import os
import random
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_harness import Scenario
from services import SERVER_BACKENDS

ALL_KINDS = ["sqlite", *SERVER_BACKENDS]
"""For `@pytest.mark.parametrize("scenario", ALL_KINDS, indirect=True)`."""


@pytest.fixture(autouse=True)
def _earlier_garbage_collected() -> None:
    """Collect what earlier tests left for the garbage collector before this test starts, and
    name the sockets among it that nobody closed instead of failing this test for them.

    Why: an unclosed transport is reported when the collector frees it, which can be many
    tests after the one that dropped it; the suite turns the ResourceWarning into a failure
    of whichever test is running then. CI failed twice on R07-api (Redis) that way, for a
    transport that test never made (a TCP proxy leak it did make is fixed in
    tests/reliability/tcp_proxy.py; runs of R07-api alone under load are clean). Leaks that
    a reliability test makes itself and that are collected while it runs still fail it."""
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    for warning in found:
        print(f"left by an earlier test, collected before this one: {warning.message}",
              file=sys.stderr)


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
