"""Shared by the PostgreSQL tests of tests/stores: per-test schemas and a side connection
that plays the operator (catalog reads, pg_terminate_backend)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from services import POSTGRES_URL, require_service

from backburner.backends.postgres import PostgresBackend


def schema_url(**options: str) -> tuple[str, str]:
    """(url, schema) of a schema of its own on the test server."""
    require_service(POSTGRES_URL)
    schema = f"bbt_{uuid.uuid4().hex[:12]}"
    extra = "".join(f"&{k}={v}" for k, v in options.items())
    return f"{POSTGRES_URL}?schema={schema}{extra}", schema


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.destroy()
        await backend.close()


@asynccontextmanager
async def admin() -> AsyncIterator[Any]:
    require_service(POSTGRES_URL)
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"application_name": "bbt-admin"})
    try:
        yield conn
    finally:
        await conn.close()


async def terminate(conn: Any, application_name: str) -> int:
    """Kill every session of that application name; how many there were."""
    rows = await conn.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        application_name,
    )
    return len(rows)


async def eventually(condition: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll `condition` (sync or async) until true; seconds it took."""
    start = time.monotonic()
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
