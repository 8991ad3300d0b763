"""Operator commands of the `backburner` CLI: `info`, `healthcheck`, `purge`, and `jobs list /
retry / cancel / delete` by id or by filter (`register` adds them to the `backburner` CLI).

Times on the command line (`--since`, `--until`, `--older-than`) are durations back from now
(`90s`, `15m`, `6h`, `2d`, `1w`), ISO 8601 datetimes (naive ones are UTC), or epoch seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from backburner import bulk
from backburner.app import Backburner
from backburner.backends.protocol import BacklogReads, JobFilter, WorkerInfo
from backburner.cli_common import (
    AppOption,
    JsonOption,
    UrlOption,
    app_from,
    iso,
    job_summary,
    open_existing,
    run,
)
from backburner.errors import BackburnerError, ConfigurationError, StoreNotFoundError
from backburner.job import TERMINAL_STATES, JobState

LIVE_WORKER = 60.0
"""Seconds since its last heartbeat under which a worker counts as alive (as in metrics)."""

AGE_CHECK_CAP = 100_000
"""`healthcheck --max-age` reads at most this many pending jobs (newest first)."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

StateOption = Annotated[list[str] | None, typer.Option(
    "--state", "-s", metavar="STATE",
    help="Only jobs in this state: pending, scheduled, running, completed, failed or "
    "cancelled; repeat for several.")]
TaskOption = Annotated[str | None, typer.Option("--task", "-t", metavar="TASK",
                                                help="Only jobs of this task.")]
QueueOption = Annotated[str | None, typer.Option("--queue", "-q", metavar="QUEUE",
                                                 help="Only jobs in this queue.")]
SearchOption = Annotated[str | None, typer.Option(
    "--search", metavar="TEXT",
    help="Case-insensitive text in arguments, results and errors.")]
SinceOption = Annotated[str | None, typer.Option(
    "--since", metavar="WHEN",
    help="Created at or after: 2h, 3d, an ISO datetime or epoch seconds.")]
UntilOption = Annotated[str | None, typer.Option(
    "--until", metavar="WHEN",
    help="Created before: 2h, 3d, an ISO datetime or epoch seconds.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every job matching the filters.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, metavar="N",
                                                 help="At most this many jobs.")]
JobIdArgument = Annotated[str | None, typer.Argument(
    metavar="ID", help="The job's id (or --all with filters instead).")]


def parse_duration(text: str, hint: str) -> float:
    """`90s`, `15m`, `6h`, `2d`, `1w` (or plain seconds) in seconds."""
    match = _DURATION.match(text)
    if match:
        return float(match.group(1)) * _UNITS[match.group(2)]
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0 or value != value or value == float("inf"):
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 15m, 6h, 2d",
                                 param_hint=hint)
    return value


def parse_when(text: str, hint: str, now: float | None = None) -> float:
    """A point in time as epoch seconds (see the module docstring)."""
    now = time.time() if now is None else now
    if _DURATION.match(text):
        return now - parse_duration(text, hint)
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value == value and abs(value) != float("inf"):
            return value
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (2h, 3d), an ISO datetime nor epoch seconds",
            param_hint=hint,
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _states(values: list[str] | None) -> tuple[JobState, ...]:
    known = {m.value for m in JobState}
    for s in values or []:
        if s not in known:
            raise typer.BadParameter(f"{s!r} is not one of {', '.join(sorted(known))}",
                                     param_hint="--state")
    return tuple(JobState(s) for s in values or [])


def _filter(
    app: Backburner, state: list[str] | None, task: str | None, queue: str | None,
    search: str | None, since: str | None, until: str | None,
) -> JobFilter:
    try:
        return app.job_filter(
            states=_states(state), task=task, queue=queue, search=search,
            created_after=None if since is None else parse_when(since, "--since"),
            created_before=None if until is None else parse_when(until, "--until"),
        )
    except ConfigurationError as exc:  # a filter no job can match (a bad queue name, NUL)
        raise typer.BadParameter(str(exc)) from None


def _session(app: Backburner, work: Callable[[], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        try:
            await open_existing(app)
            return await work()
        finally:
            await app.close()

    return run(go)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def register(cli: typer.Typer, jobs_cli: typer.Typer) -> None:
    """Add `jobs list / retry / cancel / delete` to `jobs_cli`, and `purge`, `info` and
    `healthcheck` to `cli` (in this order: help lists commands as they were added)."""
    jobs_cli.command("list")(jobs_list)
    jobs_cli.command("retry")(jobs_retry)
    jobs_cli.command("cancel")(jobs_cancel)
    jobs_cli.command("delete")(jobs_delete)
    cli.command()(purge)
    cli.command()(info)
    cli.command()(healthcheck)


# -- jobs ------------------------------------------------------------------------------------
def jobs_list(
    app: AppOption = None,
    url: UrlOption = None,
    state: StateOption = None,
    task: TaskOption = None,
    queue: QueueOption = None,
    search: SearchOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, metavar="N",
                                       help="At most this many jobs (1 to 1000).")] = 50,
    cursor: Annotated[str | None, typer.Option(
        metavar="CURSOR", help="Go on where a list stopped (its last line says how).")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first.

    At most --limit of them; --cursor goes on where a list stopped."""
    the_app = app_from(app, url)
    filter = _filter(the_app, state, task, queue, search, since, until)

    async def work() -> tuple[list[Any], str | None]:
        # A search reads a bounded window per page: gather pages until --limit is reached.
        found: list[Any] = []
        next_cursor = cursor
        while True:
            page = await the_app.list_jobs(filter=filter, limit=limit - len(found),
                                           cursor=next_cursor)
            found += page.jobs
            next_cursor = page.next_cursor
            if next_cursor is None or len(found) >= limit:
                return found, next_cursor

    jobs, next_cursor = _session(the_app, work)
    if as_json:
        typer.echo(json.dumps({"jobs": [job_summary(j) for j in jobs], "next_cursor": next_cursor}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "task", "queue", "state", "attempt", "progress", "created")
    for j in jobs:
        pct = j.progress.percent if j.progress else None
        table.add_row(j.id, j.task, j.queue, j.state.value, str(j.attempt),
                      "" if pct is None else f"{pct:g}%",
                      iso(j.created_at.replace(microsecond=0)))
    Console(width=max(140, Console().width)).print(table)
    if next_cursor:
        typer.echo(f"more: --cursor {next_cursor}")


_PAST = {"retry": "retried", "cancel": "cancelled", "delete": "deleted"}


def _by_filter(
    action: bulk.Action, the_app: Backburner, filter: JobFilter, yes: bool,
    limit: int | None, as_json: bool,
) -> None:
    target = bulk.narrowed(filter, action)

    async def work() -> bulk.BulkResult | None:
        if not yes:
            matching = 0 if target is None else await the_app.count_jobs(target)
            shown = matching if limit is None else min(matching, limit)
            states = ", ".join(s.value for s in bulk.ACTION_STATES[action])
            typer.echo(f"{shown} job(s) match ({states}).")
            # Blocking the loop on the prompt is fine: nothing else runs in this process.
            if shown == 0 or not typer.confirm(f"{action.capitalize()} {shown} job(s)?",
                                               default=False):
                return None
        return await bulk.apply(the_app, filter, action, limit=limit)

    result = _session(the_app, work)
    if result is None:
        raise typer.Exit(0 if yes else 1)
    if as_json:
        typer.echo(json.dumps({"action": action, "matched": result.matched,
                               "changed": result.changed, "skipped": result.skipped}))
    else:
        typer.echo(f"{_PAST[action]} {result.changed} of {result.matched} job(s)"
                   + (f" ({result.skipped} changed meanwhile, skipped)" if result.skipped else ""))


def _action_command(action: bulk.Action, job_id: str | None, all_: bool, yes: bool,
                    app: str | None, url: str | None, filters: dict[str, Any],
                    limit: int | None, as_json: bool) -> Backburner | None:
    """Checks the id-or-filters choice; returns the app for a by-id action, or does the
    by-filter one (and returns None)."""
    given = any(v for v in filters.values())
    if job_id is not None and (all_ or given):
        raise _fail("give a job id or filters with --all, not both", 2)
    if job_id is None and not all_:
        raise _fail(f"give a job id, or --all (with filters) to {action} every matching job",
                    2)
    the_app = app_from(app, url)
    if job_id is None:
        _by_filter(action, the_app, _filter(the_app, **filters), yes, limit, as_json)
        return None
    return the_app


def jobs_retry(
    job_id: JobIdArgument = None,
    all_: AllOption = False, yes: YesOption = False,
    state: StateOption = None, task: TaskOption = None, queue: QueueOption = None,
    search: SearchOption = None, since: SinceOption = None, until: UntilOption = None,
    limit: LimitOption = None, app: AppOption = None, url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed or cancelled job again (--all: every matching one)."""
    filters = {"state": state, "task": task, "queue": queue, "search": search,
               "since": since, "until": until}
    the_app = _action_command("retry", job_id, all_, yes, app, url, filters, limit, as_json)
    if the_app is None or job_id is None:
        return
    state_after = _session(the_app, lambda: the_app.retry(job_id))
    if state_after is not JobState.PENDING:
        raise _fail(f"job {job_id} is {state_after.value}; only failed or cancelled jobs "
                    "can be retried")
    typer.echo(f"{job_id} pending")


def jobs_cancel(
    job_id: JobIdArgument = None,
    all_: AllOption = False, yes: YesOption = False,
    state: StateOption = None, task: TaskOption = None, queue: QueueOption = None,
    search: SearchOption = None, since: SinceOption = None, until: UntilOption = None,
    limit: LimitOption = None, app: AppOption = None, url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a job (--all: matching unfinished ones).

    A waiting job is cancelled at once; the worker of a running one is asked to stop it.
    With --all, every matching pending, scheduled or running job."""
    filters = {"state": state, "task": task, "queue": queue, "search": search,
               "since": since, "until": until}
    the_app = _action_command("cancel", job_id, all_, yes, app, url, filters, limit, as_json)
    if the_app is None or job_id is None:
        return
    state_after = _session(the_app, lambda: the_app.cancel(job_id))
    if state_after is JobState.RUNNING:
        typer.echo(f"{job_id} running: cancellation requested")
    elif state_after is JobState.CANCELLED:
        typer.echo(f"{job_id} cancelled")
    else:
        raise _fail(f"job {job_id} is already {state_after.value}")


def jobs_delete(
    job_id: JobIdArgument = None,
    all_: AllOption = False, yes: YesOption = False,
    state: StateOption = None, task: TaskOption = None, queue: QueueOption = None,
    search: SearchOption = None, since: SinceOption = None, until: UntilOption = None,
    limit: LimitOption = None, app: AppOption = None, url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Forget a job that is not running (--all: matching finished ones).

    With --all, every matching completed, failed or cancelled job."""
    filters = {"state": state, "task": task, "queue": queue, "search": search,
               "since": since, "until": until}
    the_app = _action_command("delete", job_id, all_, yes, app, url, filters, limit, as_json)
    if the_app is None or job_id is None:
        return

    async def delete() -> str:
        if await the_app.get_job(job_id) is None:
            return "missing"
        return "deleted" if await the_app.delete(job_id) else "running"

    outcome = _session(the_app, delete)
    if outcome == "missing":
        raise _fail(f"no job with id {job_id!r}")
    if outcome == "running":
        raise _fail(f"job {job_id} is running; cancel it first")
    typer.echo(f"{job_id} deleted")


def purge(
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="AGE", help="Created longer ago than this: 1d, 12h, 30m.")],
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", metavar="STATE",
        help="Finished state to purge: completed (default), failed or cancelled; repeat "
        "for several.")] = None,
    task: TaskOption = None, queue: QueueOption = None, yes: YesOption = False,
    app: AppOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Delete old finished jobs.

    Those created longer ago than --older-than: completed ones, unless --state says
    otherwise."""
    states = _states(state or ["completed"])
    for s in states:
        if s not in TERMINAL_STATES:
            raise typer.BadParameter(f"{s.value!r} is not a finished state", param_hint="--state")
    the_app = app_from(app, url)
    cutoff = time.time() - parse_duration(older_than, "--older-than")
    filter = the_app.job_filter(states=states, task=task, queue=queue, created_before=cutoff)
    _by_filter("delete", the_app, filter, yes, None, as_json)


# -- info ------------------------------------------------------------------------------------
_COLUMNS = (JobState.PENDING, JobState.SCHEDULED, JobState.RUNNING, JobState.COMPLETED,
            JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class QueueRow:
    queue: str
    counts: dict[JobState, int]
    workers: int


async def queue_rows(app: Backburner) -> list[QueueRow]:
    """Per queue: jobs per state and live workers serving it (the store's view)."""
    await app.open()
    counts = await app.backend.counts()
    workers = _live(await app.backend.list_workers(), await app.backend.now())
    queues = {q for q, _ in counts} | {t.defaults.queue for t in app.tasks.values()}
    queues |= {q for w in workers for q in w.queues}
    return [
        QueueRow(q, {s: counts.get((q, s), 0) for s in _COLUMNS},
                 sum(1 for w in workers if q in w.queues))
        for q in sorted(queues)
    ]


def _live(workers: list[WorkerInfo], now: float) -> list[WorkerInfo]:
    return [w for w in workers if now - w.heartbeat_at < LIVE_WORKER]


def _table(rows: list[QueueRow]) -> Any:
    from rich import box
    from rich.table import Column, Table

    # Eight columns in 80: no vertical rules, and the counts never shrink below their
    # header, so "scheduled" and "cancelled" are never cut to "schedul…" (a long queue
    # name wraps instead).
    counts = (Column(name, justify="right", no_wrap=True, min_width=len(name))
              for name in (*(s.value for s in _COLUMNS), "workers"))
    table = Table(Column("queue", overflow="fold", min_width=10), *counts,
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  title=f"backburner  {iso(datetime.now(UTC).replace(microsecond=0))}")
    for row in rows:
        table.add_row(row.queue, *(str(row.counts[s]) for s in _COLUMNS), str(row.workers))
    return table


def info(
    interval: Annotated[float | None, typer.Option(
        "--interval", "-i", min=0.1, metavar="SECONDS",
        help="Refresh every SECONDS until Ctrl-C.")] = None,
    app: AppOption = None, url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Jobs per queue and state, and live workers per queue."""
    the_app = app_from(app, url)
    if as_json:
        rows = _session(the_app, lambda: queue_rows(the_app))
        typer.echo(json.dumps([{"queue": r.queue, **{s.value: n for s, n in r.counts.items()},
                                "workers": r.workers} for r in rows]))
        return
    from rich.console import Console

    console = Console()
    if interval is None:
        console.print(_table(_session(the_app, lambda: queue_rows(the_app))))
        return
    from rich.live import Live

    async def live() -> None:
        with Live(console=console, auto_refresh=False) as screen:
            while True:
                screen.update(_table(await queue_rows(the_app)), refresh=True)
                await asyncio.sleep(interval)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a live table ends
        _session(the_app, live)


# -- healthcheck -----------------------------------------------------------------------------
async def health(
    app: Backburner, *, max_backlog: int | None = None, max_age: float | None = None,
    queue: str | None = None,
) -> str | None:
    """None when healthy, else the reason: the store answers, a live worker exists (serving
    `queue` when given), pending jobs are at most `max_backlog` and none has been ready for
    longer than `max_age` seconds."""
    await app.open()
    now = await app.backend.now()
    workers = _live(await app.backend.list_workers(), now)
    if queue is not None:
        workers = [w for w in workers if queue in w.queues]
    if not workers:
        where = f" serving queue {queue!r}" if queue else ""
        return f"no live worker{where} (no heartbeat in the last {LIVE_WORKER:.0f} s)"
    if max_backlog is not None:
        # The store's kept counts (a few rows at any size), not a count of the table.
        counts = await app.backend.counts()
        backlog = sum(n for (q, state), n in counts.items()
                      if state is JobState.PENDING and queue in (None, q))
        if backlog > max_backlog:
            return f"backlog {backlog} pending jobs > {max_backlog}"
    if max_age is not None:
        waited = await _oldest_wait(app, queue, now, max_age)
        if isinstance(waited, str):
            return waited
        if waited is not None and waited > max_age:
            return f"a pending job has waited {waited:.0f} s > {max_age:g} s"
    return None


async def _oldest_wait(
    app: Backburner, queue: str | None, now: float, max_age: float
) -> float | str | None:
    """Seconds the longest-waiting ready job (of `queue`, or of any) has waited; a reason
    string when a store without BacklogReads has too many to look at."""
    if isinstance(app.backend, BacklogReads):
        ages = await app.backend.oldest_pending()
        found = [age for q, age in ages.items() if queue in (None, q)]
        return max(found, default=None)
    pending = JobFilter(states=(JobState.PENDING,), queue=queue)
    oldest: float | None = None
    read = 0
    cursor: str | None = None
    while True:
        page = await app.list_jobs(filter=pending, limit=1000, cursor=cursor)
        for job in page.jobs:
            ready = job.run_at.timestamp()
            oldest = ready if oldest is None else min(oldest, ready)
        read += len(page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
        if read >= AGE_CHECK_CAP:
            if oldest is not None and now - oldest > max_age:
                break  # unhealthy already, whatever the rest
            return f"over {AGE_CHECK_CAP} pending jobs: too many to check their age"
    return None if oldest is None else now - oldest


def healthcheck(
    max_backlog: Annotated[int | None, typer.Option(
        "--max-backlog", min=0, metavar="N",
        help="Unhealthy above this many pending jobs.")] = None,
    max_age: Annotated[float | None, typer.Option(
        "--max-age", min=0, metavar="SECONDS",
        help="Unhealthy when a pending job has waited longer.")] = None,
    queue: Annotated[str | None, typer.Option(
        "--queue", "-q", metavar="QUEUE",
        help="Only this queue: a live worker serving it, its pending jobs.")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.1, metavar="SECONDS",
        help="Unhealthy when the store takes longer to answer.")] = 10.0,
    app: AppOption = None, url: UrlOption = None,
) -> None:
    """Exit 0 when the store and a worker are alive, else 1.

    Healthy: the store answers, a live worker exists (serving --queue when given) and the
    backlog limits hold; otherwise exit 1 with a one-line reason. For liveness and
    readiness probes."""
    the_app = app_from(app, url)

    async def probe() -> str | None:
        await open_existing(the_app)
        return await health(the_app, max_backlog=max_backlog, max_age=max_age, queue=queue)

    async def check() -> str | None:
        try:
            return await asyncio.wait_for(probe(), timeout)
        except TimeoutError:
            return f"the store did not answer within {timeout:g} s"
        except StoreNotFoundError as exc:
            return str(exc)
        except BackburnerError as exc:
            return f"the store is unavailable: {exc}"
        finally:
            await the_app.close()

    reason = asyncio.run(check())
    if reason is not None:
        typer.echo(f"unhealthy: {reason}", err=True)
        raise typer.Exit(1)
    typer.echo("healthy")
