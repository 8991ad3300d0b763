"""The application's connection (`options(connection=...)`) as the calling thread sees it.

The sync API runs the enqueue on an event loop in another thread while the caller waits,
so an object that finds "the current thread's connection" at each use must be resolved
before the hand-off. Django's `django.db.connection` is such a proxy: used from the portal's
thread it would reach that thread's connection, outside the view's `transaction.atomic()`,
and the job would survive the view's rollback. Framework types are recognised by name, so
the core imports no framework."""

from __future__ import annotations

from typing import Any


def pinned(connection: Any) -> Any:
    """`connection` as this thread sees it; anything that is no per-thread proxy as is."""
    kind = type(connection)
    if kind.__module__ == "django.utils.connection" and kind.__name__ == "ConnectionProxy":
        return connection._connections[connection._alias]
    return connection
