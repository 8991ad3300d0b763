"""The HTTP API for periodic schedules, part of every `job_router` (so its `dependencies` and
`write_dependencies` apply here too): list them with their next ticks and last run, pause,
resume, and trigger one run now (202 + Location, like `accepted`).

Schedules are defined in code (`@app.periodic`); the store only keeps whether each is
paused, so every process sharing the store sees the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from backburner.app import Backburner, ScheduleInfo
from backburner.fastapi.common import (
    UNAVAILABLE,
    AppDep,
    ContextDep,
    Responses,
    RouterContext,
    accepted,
    bind,
    forbidden,
    new_router,
    store_access,
)
from backburner.fastapi.origins import origin_check
from backburner.fastapi.problems import close_methods, problem
from backburner.fastapi.schemas import JobAccepted
from backburner.job import JobRecord, JobState

LAST_RUN_LOOKBACK = 50
"""How many of the task's newest jobs are searched for the schedule's last tick."""
NOT_FOUND: Responses = {404: problem("no schedule of this name")}
FORBIDDEN = forbidden("schedules")
ScheduleName = Annotated[str, Path(min_length=1, max_length=200,
                                   description="the schedule's name (`@app.periodic(name=)`)")]


class ScheduleRunOut(BaseModel):
    """The job of a schedule's latest tick."""

    job_id: str
    tick: datetime | None = Field(None, description="the tick's instant (UTC)")
    state: JobState
    created_at: datetime
    finished_at: datetime | None = None


class ScheduleOut(BaseModel):
    """One periodic schedule: what it runs, when, and whether it is paused."""

    name: str
    task: str
    description: str = Field(description='in words: "At 09:00 every day (Europe/Paris)"')
    cron: str | None = Field(None, description="the cron expression, in `tz`")
    every: float | None = Field(None, description="seconds between ticks (interval schedules)")
    tz: str
    paused: bool
    next_runs: list[datetime] = Field(
        description="the next ticks by the store's clock, in `tz` (also when paused)")
    last_run: ScheduleRunOut | None = Field(
        None, description="the job of the latest tick, if one is among the task's "
                          f"{LAST_RUN_LOOKBACK} newest jobs (a triggered run is not a tick)")


class ScheduleListOut(BaseModel):
    schedules: list[ScheduleOut]


def schedule_router(
    app: Backburner,
    *,
    dependencies: Sequence[DependsParam] = (),
    write_dependencies: Sequence[DependsParam] = (),
    name: str = "backburner",
    allowed_origins: Sequence[str] | None = None,
) -> APIRouter:
    """The schedule routes on a router of their own; `job_router` adds them to itself (see
    `add_schedule_routes`). Mounted apart, put them next to a `job_router` of the same
    `name`: the trigger's `Location` is that router's job status route. Pause, resume
    and trigger refuse a foreign browser `Origin` with 403 as `job_router`'s writes do
    (`allowed_origins`: the same option, see `job_router`)."""
    router = new_router([bind(RouterContext(app, name)), *dependencies])
    add_schedule_routes(router, name=name,
                        writes=[*write_dependencies, origin_check(allowed_origins)])
    close_methods(router)
    return router


Runs = Annotated[int, Query(ge=1, le=100, description="next ticks to list")]


async def _one(app: Backburner, schedule: str, runs: int = 5) -> ScheduleOut:
    for info in await app.schedules(runs=runs):
        if info.name == schedule:
            return await _out(app, info)
    raise _unknown(schedule)  # pragma: no cover - checked by the caller first


def _known(app: Backburner, schedule: str) -> None:
    if schedule not in app.periodic_schedules:
        raise _unknown(schedule)


async def list_schedules(app: AppDep, runs: Runs = 5) -> ScheduleListOut:
    """Every periodic schedule: cron or interval, time zone, description, paused or
    not, the next ticks and the job of the latest one."""
    async with store_access():
        infos = await app.schedules(runs=runs)
        return ScheduleListOut(schedules=[await _out(app, info) for info in infos])


async def get_schedule(schedule: ScheduleName, app: AppDep, runs: Runs = 5) -> ScheduleOut:
    """One periodic schedule (as in the listing)."""
    _known(app, schedule)
    async with store_access():
        return await _one(app, schedule, runs)


async def pause_schedule(schedule: ScheduleName, app: AppDep) -> ScheduleOut:
    """Enqueue no tick of this schedule, on any worker, until it is resumed."""
    _known(app, schedule)
    async with store_access():
        await app.pause_schedule(schedule)
        return await _one(app, schedule)


async def resume_schedule(schedule: ScheduleName, app: AppDep) -> ScheduleOut:
    """Enqueue its ticks again from now on; none that fell while paused is caught up."""
    _known(app, schedule)
    async with store_access():
        await app.resume_schedule(schedule)
        return await _one(app, schedule)


async def trigger_schedule(
    schedule: ScheduleName, request: Request, context: ContextDep,
) -> JSONResponse:
    """Run the schedule's task once now, outside its ticks (paused or not): 202, with
    the job's status resource as `Location`."""
    _known(context.app, schedule)
    async with store_access():
        job = await context.app.trigger_schedule(schedule)
    return accepted(job, request, status_route=context.status_route)


def add_schedule_routes(
    router: APIRouter, *, name: str = "backburner", writes: Sequence[DependsParam] = (),
) -> None:
    """Add the schedule routes to `router`, a router with a `RouterContext` bound (see
    `common`), under its own dependencies; `writes` apply on top of them to pause, resume
    and trigger."""
    tags: list[str | Enum] = ["schedules"]
    router.add_api_route(
        "/schedules", list_schedules, methods=["GET"], response_model=ScheduleListOut,
        name=f"{name}_list_schedules", operation_id=f"{name}_list_schedules",
        responses=UNAVAILABLE, tags=tags)
    router.add_api_route(
        "/schedules/{schedule}", get_schedule, methods=["GET"], response_model=ScheduleOut,
        name=f"{name}_get_schedule", operation_id=f"{name}_get_schedule",
        responses={**NOT_FOUND, **UNAVAILABLE}, tags=tags)
    for verb, endpoint in (("pause", pause_schedule), ("resume", resume_schedule)):
        router.add_api_route(
            f"/schedules/{{schedule}}/{verb}", endpoint, methods=["POST"],
            response_model=ScheduleOut, name=f"{name}_{verb}_schedule",
            operation_id=f"{name}_{verb}_schedule", dependencies=writes, tags=tags,
            responses={**NOT_FOUND, **UNAVAILABLE, **FORBIDDEN})
    router.add_api_route(
        "/schedules/{schedule}/trigger", trigger_schedule, methods=["POST"], status_code=202,
        response_model=JobAccepted, name=f"{name}_trigger_schedule",
        operation_id=f"{name}_trigger_schedule", dependencies=writes, tags=tags,
        responses={**NOT_FOUND, **UNAVAILABLE, **FORBIDDEN})


def _unknown(schedule: str) -> HTTPException:
    return HTTPException(404, f"no schedule named {schedule!r}")


async def _out(app: Backburner, info: ScheduleInfo) -> ScheduleOut:
    last = await last_tick(app, info)
    return ScheduleOut(
        name=info.name, task=info.task, description=info.description, cron=info.cron,
        every=info.every, tz=info.tz, paused=info.paused, next_runs=info.next_runs,
        last_run=None if last is None else ScheduleRunOut(
            job_id=last.id, tick=_tick_of(last.unique_key), state=last.state,
            created_at=last.created_at, finished_at=last.finished_at),
    )


async def last_tick(app: Backburner, info: ScheduleInfo) -> JobRecord | None:
    """The newest job among the task's newest that carries one of this schedule's tick keys
    (`periodic:<name>@<tick>`, see `Schedule.tick_key`)."""
    prefix = f"periodic:{info.name}@"
    read = 0
    cursor: str | None = None
    # A page may come back short with a cursor (a task filter on Redis is checked on a
    # bounded window per page): go on until LAST_RUN_LOOKBACK jobs were looked at.
    while read < LAST_RUN_LOOKBACK:
        page = await app.list_jobs(task=info.task, limit=LAST_RUN_LOOKBACK - read,
                                   cursor=cursor)
        for record in page.jobs:
            if record.unique_key is not None and record.unique_key.startswith(prefix):
                return record
        read += len(page.jobs)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return None


def _tick_of(key: str | None) -> datetime | None:
    if key is None:
        return None
    try:
        return datetime.fromisoformat(key.rpartition("@")[2])
    except ValueError:
        return None
