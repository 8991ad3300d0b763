"""Fixtures shared by every tier. `backend` runs a test once per backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backburner import Backburner
from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend
from backburner.backends.sqlite import SQLiteBackend

BACKENDS = ["memory", "sqlite"]


def make_backend(kind: str, tmp_path: Path) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "sqlite":
        return SQLiteBackend(f"sqlite:///{tmp_path}/jobs.db")
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = make_backend(request.param, tmp_path)
    await b.open()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def app(backend: Backend) -> Backburner:
    application = Backburner(backend=backend, poll_interval=0.2)
    await application.open()
    return application


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
