"""What every module of the `backburner` command shares: the common options, how a command
gets its app and runs its store calls, and the JSON form of a job. `backburner.cli` assembles
the commands; the command modules (cli_ops, cli_queues, ...) import this one, never `cli`, so
there is no import cycle between them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast, overload

import typer
from pydantic_core import to_jsonable_python

from backburner.app import Backburner
from backburner.errors import BackburnerError, ConfigurationError
from backburner.job import JobRecord
from backburner.loading import load_app

T = TypeVar("T")

# Plain help (click's formatter), not rich's boxed tables: at 80 columns those cut long
# environment variable names with an ellipsis and show a `<bool>` type for every flag,
# where click wraps whole words and shows flags bare.
PLAIN: Any = None
"""`rich_markup_mode` for every Typer of the CLI."""

AppOption = Annotated[
    str | None,
    typer.Option("--app", envvar="BACKBURNER_APP", metavar="MODULE:ATTR",
                 help="The app as module:attribute."),
]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="BACKBURNER_URL", metavar="URL",
                 help="Backend URL, e.g. sqlite:///jobs.db (instead of --app)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's store calls; a BackburnerError is one red line and exit 2."""
    async def runner() -> T:
        return await coro_fn()

    try:
        return asyncio.run(runner())
    except BackburnerError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


async def open_existing(app: Backburner) -> None:
    """Open the app's store for a command that reads it or changes jobs already in it:
    only `worker` and `migrate` create a store, so a mistyped URL is an error
    (StoreNotFoundError, exit 2) instead of a new empty store and an empty listing."""
    await app.backend.open(create=False)
    await app.open()


def app_from(app: str | None, url: str | None) -> Backburner:
    """The app of --app (module:attribute), else a bare one over --url; exit 2 when neither
    is given or it cannot be loaded."""
    try:
        if app:
            return load_app(app)
        if url:
            return Backburner(url)
    except ConfigurationError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.secho("error: give --app module:attribute or --url URL (or BACKBURNER_APP / "
                "BACKBURNER_URL)", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime | None) -> str | None:
    """A time as the HTTP API writes it (pydantic's JSON form of a datetime: ISO 8601, UTC
    as `Z`), so `jobs show` and `GET /jobs/{id}` print the same text for the same time."""
    return None if value is None else cast(str, to_jsonable_python(value))


def job_summary(record: JobRecord) -> dict[str, Any]:
    """A job as `jobs list --json` prints it."""
    return {
        "id": record.id,
        "task": record.task,
        "queue": record.queue,
        "state": record.state.value,
        "attempt": record.attempt,
        "created_at": iso(record.created_at),
        # Rounded by Progress.percent itself, as every other surface shows it.
        "progress": record.progress.percent if record.progress else None,
    }


def job_details(record: JobRecord) -> dict[str, Any]:
    """A job as `jobs show` prints it: the summary and everything else known."""
    return {
        **job_summary(record),
        "priority": record.priority,
        "args": record.args,
        "kwargs": record.kwargs,
        "max_attempts": record.max_attempts,
        "failures": record.failures,
        "lost": record.lost,
        "reason": record.reason.value if record.reason else None,
        "result": record.result,
        "progress": None if record.progress is None else {
            **record.progress.to_json(), "percent": record.progress.percent},
        "errors": [{**e.to_json(), "at": iso(e.at)} for e in record.errors],
        "worker_id": record.worker_id,
        "updated_at": iso(record.updated_at),
        "run_at": iso(record.run_at),
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
        "flow_id": record.flow_id,
        "depends_on": list(record.depends_on),
        "dependents": list(record.dependents),
        "waiting_on": record.waiting_on,
    }
