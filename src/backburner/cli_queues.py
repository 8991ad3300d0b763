"""`backburner queues`: list queues with their counts, pause and resume one (every worker)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from backburner.cli_common import (
    PLAIN,
    AppOption,
    JsonOption,
    UrlOption,
    app_from,
    iso,
    open_existing,
    run,
)
from backburner.job import JobState
from backburner.queues import QueueInfo

QueueName = Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.")]


def register(cli: typer.Typer) -> None:
    """Add the `queues` group to the `backburner` CLI."""
    queues_cli = typer.Typer(help="List, pause and resume queues.", no_args_is_help=True,
                             rich_markup_mode=PLAIN)
    queues_cli.command("list")(queues_list)
    queues_cli.command("pause")(queues_pause)
    queues_cli.command("resume")(queues_resume)
    cli.add_typer(queues_cli, name="queues")


def queues_list(app: AppOption = None, url: UrlOption = None,
                as_json: JsonOption = False) -> None:
    """Queues: paused or not, jobs per state.

    Every queue that holds jobs or was ever paused."""
    the_app = app_from(app, url)

    async def go() -> list[QueueInfo]:
        try:
            await open_existing(the_app)
            return await the_app.queues()
        finally:
            await the_app.close()

    found = run(go)
    if as_json:
        typer.echo(json.dumps([
            {"name": q.name, "paused": q.paused,
             "counts": {s.value: n for s, n in q.counts.items()}, "total": q.total,
             "changed_at": iso(q.changed_at)}
            for q in found
        ], indent=2))
        return
    if not found:
        typer.echo("no queues")
    for q in found:
        shown = "  ".join(f"{s.value}={q.counts[s]}" for s in JobState if q.counts[s])
        typer.echo(f"{q.name}  [{'paused' if q.paused else 'active'}]  {shown or 'empty'}")


def _set_paused(name: str, app: str | None, url: str | None, paused: bool) -> None:
    the_app = app_from(app, url)

    async def go() -> None:
        try:
            await open_existing(the_app)
            if paused:
                await the_app.pause_queue(name)
            else:
                await the_app.resume_queue(name)
        finally:
            await the_app.close()

    run(go)
    typer.echo(f"{name} {'paused' if paused else 'resumed'}")


def queues_pause(name: QueueName, app: AppOption = None, url: UrlOption = None) -> None:
    """Stop every worker from claiming this queue's jobs.

    Running ones finish; new ones are stored and wait."""
    _set_paused(name, app, url, True)


def queues_resume(name: QueueName, app: AppOption = None, url: UrlOption = None) -> None:
    """Let workers claim this queue's jobs again (woken at once)."""
    _set_paused(name, app, url, False)
