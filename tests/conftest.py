"""Fixtures shared by every tier. `backend` runs a test once per backend.

Redis and PostgreSQL tests talk to real servers (BACKBURNER_TEST_REDIS_URL, default
redis://127.0.0.1:6379/15; BACKBURNER_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test). Each test gets its own key prefix / schema and
removes it afterwards. A server that is down fails the run under CI=true and skips (loudly)
elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from backburner import Backburner
from backburner.backends import open_backend
from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend
from backburner.backends.sqlite import SQLiteBackend

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("BACKBURNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "BACKBURNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# A backend joins every contract test as soon as its package exists.
BACKENDS = ["memory", "sqlite"]
if _available("backburner.backends.redis"):
    BACKENDS.append("redis")
if _available("backburner.backends.postgres"):
    BACKENDS.append("postgres")


def require_service(url: str) -> None:
    """Fail under CI, skip loudly elsewhere, when the server behind `url` is not listening."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (6379 if parts.scheme.startswith("redis") else 5432)
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{parts.scheme} server at {host}:{port} is not reachable ({exc})"
    if IN_CI:
        pytest.fail(f"{reason}: CI must run these tests (.ci/run starts the services)")
    warnings.warn(f"SKIPPING: {reason}", stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


def backend_url(kind: str, tmp_path: Path) -> str:
    """A URL isolated to one test."""
    token = uuid.uuid4().hex[:12]
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    if kind == "redis":
        require_service(REDIS_URL)
        return f"{REDIS_URL}?prefix=bbt-{token}"
    if kind == "postgres":
        require_service(POSTGRES_URL)
        return f"{POSTGRES_URL}?schema=bbt_{token}"
    raise ValueError(kind)


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
