"""Fixtures shared by every tier. `backend` runs a test once per backend: memory, SQLite,
and the server backends (see services.py), each test on its own key prefix or schema,
removed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from services import IN_CI, SERVER_BACKENDS, backend_url, require_service

from backburner import Backburner
from backburner.backends import open_backend
from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend
from backburner.backends.sqlite import SQLiteBackend

BACKENDS = ["memory", "sqlite", *SERVER_BACKENDS]
__all__ = ["BACKENDS", "require_service"]  # require_service: for server-specific tests


def make_backend(kind: str, tmp_path: Path) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "sqlite":
        return SQLiteBackend(backend_url(kind, tmp_path))
    return open_backend(backend_url(kind, tmp_path))


async def dispose(backend: Backend) -> None:
    """Close, and remove what a server-backed test stored (its prefix or schema)."""
    destroy = getattr(backend, "destroy", None)
    if destroy is not None:
        await destroy()
    await backend.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    b = make_backend(request.param, tmp_path)
    await b.open()
    try:
        yield b
    finally:
        await dispose(b)


@pytest.fixture
async def app(backend: Backend) -> Backburner:
    application = Backburner(backend=backend, poll_interval=0.2)
    await application.open()
    return application


@pytest.fixture
def in_ci() -> bool:
    return IN_CI
