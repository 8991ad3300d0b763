"""Stores for jobs. `open_backend(url)` picks one by URL scheme."""

from __future__ import annotations

from urllib.parse import urlsplit

from backburner.backends.protocol import Backend
from backburner.errors import ConfigurationError


def open_backend(url: str) -> Backend:
    """Build (but do not connect) the backend a URL names.

    `memory://` in-process; `sqlite:///relative.db`, `sqlite:////absolute.db`, with optional
    query options `?synchronous=full&busy_timeout=5`.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"backend URL must look like 'sqlite:///jobs.db' or 'memory://', got {url!r}"
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from backburner.backends.memory import MemoryBackend

        return MemoryBackend(url)
    if scheme == "sqlite":
        from backburner.backends.sqlite import SQLiteBackend

        return SQLiteBackend(url)
    if scheme in ("redis", "rediss"):
        try:
            from backburner.backends.redis import RedisBackend
        except ImportError as exc:
            raise ConfigurationError(
                f"the Redis backend needs redis-py: pip install 'backburner[redis]' ({exc})"
            ) from exc
        return RedisBackend(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from backburner.backends.postgres import PostgresBackend
        except ImportError as exc:
            raise ConfigurationError(
                f"the PostgreSQL backend needs asyncpg: pip install 'backburner[postgres]' ({exc})"
            ) from exc
        return PostgresBackend(url)
    raise ConfigurationError(f"unknown backend scheme {scheme!r} in {url!r}")
