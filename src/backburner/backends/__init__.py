"""Stores for jobs. `open_backend(url)` picks one by URL scheme, from the stores registered
in the `backburner.stores` entry-point group (see registry.py)."""

from __future__ import annotations

from backburner.backends.protocol import Backend
from backburner.backends.registry import installed_stores
from backburner.errors import ConfigurationError


def open_backend(url: str) -> Backend:
    """Build (but do not connect) the backend a URL names.

    `memory://` in-process; `sqlite:///relative.db`, `sqlite:////absolute.db`, with optional
    query options `?synchronous=full&busy_timeout=5`; `redis://`/`rediss://` and
    `postgresql://`/`postgres://` with their extras installed; any scheme another installed
    package registers.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"backend URL must look like 'sqlite:///jobs.db' or 'memory://', got {url!r}"
        )
    return installed_stores().open(url)
