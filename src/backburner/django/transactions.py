"""Enqueueing from a Django view so that the job exists only if the view's transaction
commits.

Two ways, chosen per call by where the jobs are stored:

- The store is the PostgreSQL database Django's `using` connection points at (same host,
  port and database name; Backburner's tables live in their own schema there) and Django
  talks to it through psycopg 3: the job is inserted on Django's connection, inside the
  view's `transaction.atomic()` (`task.options(connection=connections[using])`). Commit and
  job are one: a rollback removes the job, a commit makes it visible and wakes the workers.
- Anything else (a SQLite or Redis store, another PostgreSQL database, Django on SQLite or
  psycopg2): the enqueue runs in `transaction.on_commit(..., using=using)`, after Django
  committed. A rollback still means no job, but this is after-commit, not atomic: a crash
  (or a store outage) between the commit and the enqueue loses the job. Outside an atomic
  block (autocommit) there is nothing to wait for and the job is enqueued at once.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from backburner.enqueue import DEFAULT_OPTIONS, build_job
from backburner.handle import Job
from backburner.task import BoundTask, Task

R = TypeVar("R")

log = logging.getLogger("backburner.django")

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_LOOPBACK = frozenset({"", "localhost", "127.0.0.1", "::1"})
"""Host spellings that all mean this machine (Django's HOST "" is a local connection)."""


def enqueue_on_commit(
    task: Task[Any, R] | BoundTask[Any, R], *args: Any, using: str = "default", **kwargs: Any
) -> Job[R] | None:
    """Enqueue `task(*args, **kwargs)` so that it exists only if the transaction open on
    Django's `using` database commits (see the module for the two ways).

    Returns the job's handle when the job is already in the store or in the open
    transaction (same PostgreSQL database; or no atomic block open), and None when the
    enqueue was deferred to `on_commit`: there is no job yet, and maybe never will be, so
    there is no handle that could honestly be returned. Typed `Job | None` so a caller
    that needs the id (a 202 with a Location) must handle the deferred case.

    Inside `atomic()` the job only becomes visible at the commit: do not wait for its result
    before the block ends. `task` may carry options (`task.options(delay=5)`), except
    `connection=`, which this helper chooses. Arguments are checked here, at once, in both
    ways (a bad argument raises in the view, not after the commit)."""
    from django.db import connections, transaction

    bound = task if isinstance(task, BoundTask) else task.options()
    # The call's arguments with the bound options: read through the public `call`.
    call = bound.call(*args, **kwargs)
    options = call.options if call.options is not None else DEFAULT_OPTIONS
    if options.connection is not None:
        raise TypeError("enqueue_on_commit chooses the connection itself; drop connection=")
    connection: Any = connections[using]
    if shares_database(bound.task.app.url, connection):
        return bound.options(connection=connection).enqueue_sync(*args, **kwargs)
    if not connection.in_atomic_block:
        return bound.enqueue_sync(*args, **kwargs)
    # Checked and encoded now (then dropped), so the view sees a bad argument rather than
    # a failure after the commit.
    build_job(bound.task, options, args, kwargs)

    def enqueue() -> None:
        job = bound.enqueue_sync(*args, **kwargs)
        log.debug("enqueued %s after commit on %r", job.id, using)

    transaction.on_commit(enqueue, using=using)
    return None


def shares_database(store_url: str, connection: Any) -> bool:
    """Whether Backburner's store at `store_url` is the PostgreSQL database Django's
    `connection` uses (host, port and database name compared; loopback spellings are one
    host) through psycopg 3, so a job can be inserted in Django's transaction."""
    if getattr(connection, "vendor", None) != "postgresql" or not _on_psycopg3(connection):
        return False
    parts = urlsplit(store_url)
    if parts.scheme.lower() not in _POSTGRES_SCHEMES:
        return False
    try:
        store = (_host(parts.hostname), parts.port or 5432, unquote(parts.path.lstrip("/")))
    except ValueError:  # several hosts, a bad port: not provably the same database
        return False
    settings: dict[str, Any] = connection.settings_dict
    name = settings.get("NAME") or ""
    try:
        port = int(settings.get("PORT") or 5432)
    except (TypeError, ValueError):
        return False
    return store == (_host(settings.get("HOST")), port, str(name))


def _host(host: str | None) -> str:
    host = (host or "").lower()
    return "localhost" if host in _LOOPBACK else host


def _on_psycopg3(connection: Any) -> bool:
    database = getattr(connection, "Database", None)
    return getattr(database, "__name__", "") == "psycopg"
