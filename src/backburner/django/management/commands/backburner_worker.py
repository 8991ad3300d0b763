"""`python manage.py backburner_worker`: a Backburner worker for settings.BACKBURNER_APP,
with Django set up, so tasks can use the ORM.

Sync tasks run in the worker's threads and use the ORM as any Django code does; each is
wrapped like a request (`close_old_connections` before and after), so a connection past
CONN_MAX_AGE or broken by a server restart is replaced rather than reused. Async tasks run
on the worker's event loop, where Django refuses its sync ORM (SynchronousOnlyOperation):
use the async ORM (`await Model.objects.aget(...)`) or `sync_to_async`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backburner.app import Backburner
from backburner.errors import BackburnerError
from backburner.loading import load_app


class Command(BaseCommand):  # type: ignore[misc]  # Django has no bundled types
    help = "Run a Backburner worker for settings.BACKBURNER_APP (Django set up for tasks)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--app", metavar="MODULE:ATTR",
                            help="The Backburner app (default: settings.BACKBURNER_APP).")
        parser.add_argument("--concurrency", "-c", type=int, default=10, metavar="N",
                            help="Jobs run at once (default 10).")
        parser.add_argument("--queues", "-q", default="", metavar="A,B",
                            help="Queues to serve, comma-separated, in priority order "
                            "(default: the app's tasks' queues).")
        parser.add_argument("--burst", action="store_true", help="Exit once no job is ready.")
        parser.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                            help="On shutdown, how long running jobs get to finish.")
        parser.add_argument("--log-level", default=None, metavar="LEVEL",
                            help="Backburner's log level (DEBUG, INFO, WARNING, ERROR); "
                            "default: the project's LOGGING, else INFO.")

    def handle(self, *args: Any, **options: Any) -> None:
        level: Any = None
        if options["log_level"] is not None:
            level = logging.getLevelName(str(options["log_level"]).upper())
            if not isinstance(level, int):
                raise CommandError(f"unknown log level {options['log_level']!r}")
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        _log_to_stderr(level)
        try:
            app = _app(options["app"])
        except BackburnerError as exc:
            raise CommandError(str(exc)) from None
        _close_connections_around_sync_tasks(app)
        worker_options: dict[str, Any] = {
            "concurrency": options["concurrency"], "burst": options["burst"],
            "grace": options["grace"], "handle_signals": True,
        }
        queues = [q.strip() for q in options["queues"].split(",") if q.strip()]
        if queues:
            worker_options["queues"] = queues
        try:
            asyncio.run(app.run_worker(**worker_options))
        except BackburnerError as exc:
            raise CommandError(str(exc)) from None


def _log_to_stderr(level: int | None) -> None:
    """Backburner's logs (the worker's start, jobs, stop) on stderr as `backburner worker`
    prints them, unless the project's LOGGING already sends them somewhere: Django's own
    logging configuration is left as it is (no second handler, no new root handler)."""
    logger = logging.getLogger("backburner")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        if level is None:
            level = logging.INFO
    if level is not None:
        logger.setLevel(level)


def _app(spec: str | None) -> Backburner:
    if spec:
        return load_app(spec)
    from backburner.django.settings import get_app

    return get_app()


def _close_connections_around_sync_tasks(app: Backburner) -> None:
    """What Django does around each request, around each sync task of this process: drop
    connections that are too old or unusable. Only in this command's process."""
    from django.db import close_old_connections

    for task in app.tasks.values():
        if not task.is_async and not getattr(task.func, "_backburner_django", False):
            task.func = _closing(task.func, close_old_connections)


def _closing(func: Callable[..., Any], close: Callable[[], None]) -> Callable[..., Any]:
    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        close()
        try:
            return func(*args, **kwargs)
        finally:
            close()

    run._backburner_django = True  # type: ignore[attr-defined]
    return run
