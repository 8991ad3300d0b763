"""The real servers tests talk to, and per-test isolated URLs on them.

Redis: BACKBURNER_TEST_REDIS_URL (default redis://127.0.0.1:6379/15); PostgreSQL:
BACKBURNER_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test). A server
that is down fails the run under CI=true and skips (loudly) elsewhere.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("BACKBURNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "BACKBURNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


ALL_BACKENDS = ("memory", "sqlite", "redis", "postgres")


def _only() -> frozenset[str] | None:
    """BACKBURNER_TEST_BACKENDS=memory,sqlite restricts every backend-parametrised test to
    those backends (scripts/test.sh's run on the lowest supported versions uses it)."""
    raw = os.environ.get("BACKBURNER_TEST_BACKENDS", "").strip()
    if not raw:
        return None
    kinds = frozenset(k.strip() for k in raw.split(",") if k.strip())
    unknown = sorted(kinds - set(ALL_BACKENDS))
    if unknown:
        raise pytest.UsageError(
            f"BACKBURNER_TEST_BACKENDS: unknown backend(s) {unknown}; known: {list(ALL_BACKENDS)}"
        )
    return kinds


ONLY_BACKENDS = _only()

SERVER_BACKENDS = [
    kind
    for kind, module in (("redis", "backburner.backends.redis"),
                         ("postgres", "backburner.backends.postgres"))
    if _available(module) and (ONLY_BACKENDS is None or kind in ONLY_BACKENDS)
]
"""A server backend joins the tests as soon as its package exists (unless restricted)."""


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
    with warnings.catch_warnings():
        # Into pytest's warnings summary: filterwarnings=error would make the skip an error.
        warnings.simplefilter("always")
        warnings.warn(f"SKIPPING: {reason}", stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


def backend_url(kind: str, tmp_path: Path) -> str:
    """A URL isolated to one test: its own file, key prefix or schema."""
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


def destroy_store(url: str) -> None:
    """Remove what a test made under `url` (a Redis prefix, a PostgreSQL schema); a SQLite
    file goes with the test's tmp_path. Synchronous, for the teardown of sync fixtures."""

    async def destroy() -> None:
        from backburner.backends import open_backend

        backend = open_backend(url)
        await backend.open()
        remove = getattr(backend, "destroy", None)
        if remove is not None:
            await remove()
        await backend.close()

    asyncio.run(destroy())
