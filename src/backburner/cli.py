"""The `backburner` command. Every option can also come from a BACKBURNER_* variable.

This module assembles the command: its own commands (worker, migrate, jobs show, schedules,
demo), then those of cli_dashboard, cli_ops and cli_queues, which share cli_common's options
and helpers and never import this module."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from backburner import cli_dashboard, cli_ops, cli_queues, logs
from backburner._version import __version__
from backburner.app import Backburner
from backburner.cli_common import (
    PLAIN,
    AppOption,
    JsonOption,
    UrlOption,
    app_from,
    iso,
    job_details,
    open_existing,
    run,
)
from backburner.gc_tuning import collector_tuned

cli = typer.Typer(
    name="backburner",
    help="Durable background jobs: run workers and inspect or steer jobs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=PLAIN,
)
jobs_cli = typer.Typer(help="List, show, retry, cancel and delete jobs.", no_args_is_help=True,
                       rich_markup_mode=PLAIN)
cli.add_typer(jobs_cli, name="jobs")
schedules_cli = typer.Typer(
    help="List, pause, resume and trigger periodic schedules.", no_args_is_help=True,
    rich_markup_mode=PLAIN,
)
cli.add_typer(schedules_cli, name="schedules")

ScheduleName = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"backburner {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="BACKBURNER_LOG_LEVEL", metavar="LEVEL",
                          help="Logging level: DEBUG, INFO, WARNING, ERROR.")
    ] = "INFO",
    log_format: Annotated[
        str, typer.Option("--log-format", envvar="BACKBURNER_LOG_FORMAT", metavar="FORMAT",
                          help="text, or json: one object per line.")
    ] = "text",
) -> None:
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    if log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    logs.configure(level, log_format)


@cli.command()
def worker(
    app: Annotated[str, typer.Argument(envvar="BACKBURNER_APP", metavar="MODULE:ATTR",
                                       help="The app as module:attribute.")],
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", envvar="BACKBURNER_CONCURRENCY", min=1,
                          metavar="N", help="Jobs run at once.")
    ] = 10,
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", envvar="BACKBURNER_QUEUES", metavar="QUEUE",
                     help="Queue to serve, in priority order; repeat for several (the "
                     "variable: comma-separated). Default: the app's tasks' queues."),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", envvar="BACKBURNER_BURST",
                           help="Exit once no job is ready.")
    ] = False,
    lease: Annotated[float, typer.Option(
        envvar="BACKBURNER_LEASE", min=0.1, metavar="SECONDS",
        help="How long a claim holds a job without a heartbeat: a dead worker's jobs run "
        "again soon after.")] = 30.0,
    grace: Annotated[float, typer.Option(
        envvar="BACKBURNER_GRACE", min=0, metavar="SECONDS",
        help="On shutdown, how long running jobs get to finish before they are released.",
    )] = 30.0,
    max_lost: Annotated[int, typer.Option(
        envvar="BACKBURNER_MAX_LOST", min=1, metavar="N",
        help="A job whose worker died this many times fails (worker_lost), whatever its "
        "retries.")] = 3,
    batch_size: Annotated[int, typer.Option(
        envvar="BACKBURNER_BATCH_SIZE", min=1, metavar="N",
        help="Most jobs claimed in one round trip to the store.")] = 100,
    poll_interval: Annotated[float | None, typer.Option(
        envvar="BACKBURNER_POLL_INTERVAL", min=0.01, metavar="SECONDS",
        help="How often an idle worker looks at the store when no notification arrives "
        "(default: the app's, 2).")] = None,
    uvloop: Annotated[
        bool, typer.Option("--uvloop/--no-uvloop", envvar="BACKBURNER_UVLOOP",
                           help="Use uvloop when installed.")
    ] = True,
    gc_tuning: Annotated[
        bool, typer.Option("--gc-tuning/--no-gc-tuning", envvar="BACKBURNER_GC_TUNING",
                           help="Freeze what exists once the app is imported and raise the "
                           "garbage collector's young threshold to 7,000 while the worker "
                           "runs (gc.freeze, gc.set_threshold).")
    ] = True,
    metrics_port: Annotated[int | None, typer.Option(
        envvar="BACKBURNER_METRICS_PORT", min=0, max=65535, metavar="PORT",
        help="Serve this process's Prometheus metrics on this port (/metrics, /healthz); "
        "a port already in use is an error (exit 2).")] = None,
    metrics_host: Annotated[str, typer.Option(
        envvar="BACKBURNER_METRICS_HOST", metavar="ADDRESS",
        help="Address the metrics endpoint listens on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
) -> None:
    """Run a worker process for the app's tasks."""
    the_app = app_from(app, None)
    options: dict[str, Any] = {
        "concurrency": concurrency, "burst": burst, "lease": lease, "grace": grace,
        "max_lost": max_lost, "batch_size": batch_size, "handle_signals": True,
    }
    if queue:
        options["queues"] = [q for item in queue for q in item.split(",") if q]
    if poll_interval:
        options["poll_interval"] = poll_interval
    if metrics_port is not None:
        options.update(metrics_port=metrics_port, metrics_host=metrics_host)
    if uvloop:
        try:
            import uvloop as _uvloop

            _uvloop.install()
        except ImportError:
            pass
    with collector_tuned(gc_tuning):
        run(lambda: the_app.run_worker(**options))


@cli.command()
def migrate(app: AppOption = None, url: UrlOption = None) -> None:
    """Create or upgrade the backend's schema."""
    the_app = app_from(app, url)

    async def go() -> list[int]:
        try:
            return await the_app.backend.migrate()
        finally:
            await the_app.backend.close()

    applied = run(go)
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


def _one(app: str | None, url: str | None, job_id: str,
         action: Callable[[Backburner], Awaitable[Any]]) -> Any:
    the_app = app_from(app, url)

    async def go() -> Any:
        try:
            await open_existing(the_app)
            return await action(the_app)
        finally:
            await the_app.close()

    return run(go)


@jobs_cli.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
              app: AppOption = None, url: UrlOption = None) -> None:
    """Show everything known about one job (JSON)."""
    record = _one(app, url, job_id, lambda a: a.get_job(job_id))
    if record is None:
        typer.secho(f"error: no job with id {job_id!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(job_details(record), indent=2))


@schedules_cli.command("list")
def schedules_list(
    app: AppOption = None,
    runs: Annotated[int, typer.Option("--runs", min=0, metavar="N",
                                      help="How many next ticks to show.")] = 3,
    as_json: JsonOption = False,
) -> None:
    """Every periodic schedule of the app: what, when next, paused or not.

    Needs --app: schedules are defined in code."""
    the_app = _app_with_schedules(app)

    async def go() -> Any:
        try:
            await open_existing(the_app)
            return await the_app.schedules(runs=runs)
        finally:
            await the_app.close()

    found = run(go)
    if as_json:
        typer.echo(json.dumps([
            {"name": s.name, "task": s.task, "description": s.description, "cron": s.cron,
             "every": s.every, "tz": s.tz, "paused": s.paused,
             "next_runs": [iso(d) for d in s.next_runs]}
            for s in found
        ], indent=2))
        return
    for s in found:
        state = "paused" if s.paused else "active"
        runs_text = ", ".join(iso(d) for d in s.next_runs)
        typer.echo(f"{s.name}  [{state}]  {s.description}  task={s.task}  next: {runs_text}")


def _app_with_schedules(app: str | None) -> Backburner:
    if not app:
        typer.secho("error: give --app module:attribute (or BACKBURNER_APP): schedules are "
                    "defined in the app's code", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    return app_from(app, None)


def _set_paused(name: str, app: str | None, url: str | None, paused: bool) -> None:
    the_app = app_from(app, url)
    if app and name not in the_app.periodic_schedules:
        typer.secho(f"error: no schedule named {name!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)

    async def go() -> None:
        try:
            await open_existing(the_app)
            await the_app.backend.set_schedule_paused(name, paused)
        finally:
            await the_app.close()

    run(go)
    typer.echo(f"{name} {'paused' if paused else 'resumed'}")


@schedules_cli.command("pause")
def schedules_pause(name: ScheduleName, app: AppOption = None, url: UrlOption = None) -> None:
    """Stop enqueueing a schedule's ticks, on every worker."""
    _set_paused(name, app, url, True)


@schedules_cli.command("resume")
def schedules_resume(name: ScheduleName, app: AppOption = None, url: UrlOption = None) -> None:
    """Enqueue a schedule's ticks again, from now on.

    None of the ticks that fell while it was paused is caught up."""
    _set_paused(name, app, url, False)


@schedules_cli.command("trigger")
def schedules_trigger(name: ScheduleName, app: AppOption = None) -> None:
    """Run a schedule's task once now, outside its ticks (needs --app)."""
    the_app = _app_with_schedules(app)
    if name not in the_app.periodic_schedules:
        typer.secho(f"error: no schedule named {name!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)

    async def go() -> str:
        try:
            await open_existing(the_app)
            return (await the_app.trigger_schedule(name)).id
        finally:
            await the_app.close()

    typer.echo(f"{name} triggered: job {run(go)}")


@cli.command(short_help="Run the example app, a worker and an SMTP sink (needs a clone).")
def demo(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0: any free port.")]
    = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="DEMO_DATA_DIR",
                     help="Where jobs.db, uploads and logs go (default ./demo-data)."),
    ] = None,
) -> None:
    """Run the example app (every seed scenario) under uvicorn, with an embedded worker,
    jobs in SQLite and a local SMTP server (unless SMTP_HOST is set); prints its URLs."""
    run_demo = _load_demo()
    run_demo(host=host, port=port, data_dir=data_dir)


def _load_demo() -> Callable[..., None]:
    # The demo lives in the repository's examples/ package, not in the installed package:
    # look in the current directory, then beside the source tree of an editable install.
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / "examples" / "demo" / "__init__.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            break
    try:
        module = importlib.import_module("examples.demo.run")
    except ImportError as exc:
        typer.secho(
            f"error: the demo needs a clone of the repository, installed with "
            f"pip install -e '.[demo]' ({exc})", fg=typer.colors.RED, err=True,
        )
        raise typer.Exit(2) from None
    return cast(Callable[..., None], module.run_demo)


# The other modules' commands, after this module's own: help lists commands in the order they
# were added.
cli_dashboard.register(cli)
cli_ops.register(cli, jobs_cli)
cli_queues.register(cli)


def main() -> None:
    cli()
