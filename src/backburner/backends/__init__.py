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
    if scheme in ("redis", "rediss", "postgresql", "postgres"):
        raise ConfigurationError(
            f"the {scheme} backend is not available in this version of backburner"
        )
    raise ConfigurationError(f"unknown backend scheme {scheme!r} in {url!r}")
