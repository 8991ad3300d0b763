"""Fixtures shared by every tier. `backend` runs a test once per registered store (memory,
SQLite, the server backends and any other; see services.py), each test on its own file, key
prefix or schema, removed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from services import BACKENDS, IN_CI, backend_url, destroy_store, require_service

from backburner import Backburner
from backburner.backends import open_backend
from backburner.backends.protocol import Backend

__all__ = ["BACKENDS", "require_service"]  # require_service: for server-specific tests


def make_backend(kind: str, tmp_path: Path) -> Backend:
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


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL per registered store, isolated to the test, its prefix or schema removed after:
    for tests that make their own apps from a URL (each event loop, the sync API)."""
    made = backend_url(request.param, tmp_path)
    yield made
    if not made.startswith("memory"):
        destroy_store(made)


@pytest.fixture
def in_ci() -> bool:
    return IN_CI


# pytest rewrites the asserts of every module of every installed plugin distribution (anyio,
# hypothesis, schemathesis, ...), with ast.parse at import time. Several of them import
# submodules lazily, and CPython 3.11 keeps the AST constructor's recursion depth in
# interpreter-wide state, so two threads importing at once (a test's thread and a uvicorn or
# worker thread) can raise "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905; a CI run failed on it). Our tests never assert inside those
# packages, so leave their modules as they are; our own test modules are still rewritten.
# Backburner itself is one of them since it ships a pytest plugin (backburner.pytest_plugin):
# its modules imported lazily (a store's driver module in a worker thread) are left alone too.
THIRD_PARTY_PLUGIN_PACKAGES = {"anyio", "hypothesis", "_hypothesis_pytestplugin",
                               "schemathesis", "pytest_asyncio", "pytest_timeout",
                               "backburner"}


def pytest_configure(config: pytest.Config) -> None:
    marked = getattr(config.pluginmanager.rewrite_hook, "_must_rewrite", None)
    if isinstance(marked, set):
        marked.difference_update(THIRD_PARTY_PLUGIN_PACKAGES)
