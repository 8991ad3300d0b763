"""The HTTP API for queue controls, part of every `job_router` (so its `dependencies` and
`write_dependencies` apply here too): list queues with their counts, pause and resume one.

A queue needs no declaration: any name can be read (an unknown one answers 200 with zero
counts, not paused, as a worker serving it would see it) and paused ahead of its first job;
a name no store can hold (a control character) is a 404: no such queue can exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel, Field

from backburner.app import Backburner
from backburner.errors import ConfigurationError
from backburner.fastapi.common import (
    UNAVAILABLE,
    AppDep,
    Responses,
    RouterContext,
    bind,
    forbidden,
    new_router,
    store_access,
)
from backburner.fastapi.origins import origin_check
from backburner.fastapi.problems import close_methods, problem
from backburner.job import JobState
from backburner.queues import MAX_QUEUE_NAME, QueueInfo

# A queue needs no declaration, but a name no store can hold (a control character, ...)
# names no queue that could ever exist: 404, like any other missing resource. The schema
# cannot spell Python's notion of printable, so this is an answer, not a validation error.
BAD_NAME: Responses = {404: problem("a name no queue can have")}
FORBIDDEN = forbidden("queues")
QueueName = Annotated[str, Path(min_length=1, max_length=MAX_QUEUE_NAME,
                                description="the queue's name (`@app.task(queue=)`)")]


class QueueOut(BaseModel):
    """One queue: paused or not, and how many jobs it holds in each state."""

    name: str
    paused: bool = Field(description="no worker claims its jobs; enqueued jobs wait")
    counts: dict[JobState, int] = Field(description="jobs per state, every state listed")
    total: int
    changed_at: datetime | None = Field(
        None, description="when it was last paused or resumed (store clock), if ever")

    @classmethod
    def of(cls, info: QueueInfo) -> QueueOut:
        return cls(name=info.name, paused=info.paused, counts=info.counts, total=info.total,
                   changed_at=info.changed_at)


class QueueListOut(BaseModel):
    queues: list[QueueOut] = Field(
        description="every queue that holds jobs or was ever paused, by name")


def queue_router(
    app: Backburner,
    *,
    dependencies: Sequence[DependsParam] = (),
    write_dependencies: Sequence[DependsParam] = (),
    name: str = "backburner",
    allowed_origins: Sequence[str] | None = None,
) -> APIRouter:
    """The queue routes on a router of their own (`job_router` adds them to itself).
    Pause and resume refuse a foreign browser `Origin` with 403 as `job_router`'s writes
    do (`allowed_origins`: the same option, see `job_router`)."""
    router = new_router([bind(RouterContext(app, name)), *dependencies])
    add_queue_routes(router, name=name,
                     writes=[*write_dependencies, origin_check(allowed_origins)])
    close_methods(router)
    return router


async def _one(app: Backburner, queue: str) -> QueueOut:
    try:
        return QueueOut.of(await app.queue(queue))
    except ConfigurationError as exc:
        raise HTTPException(404, str(exc)) from None


async def list_queues(app: AppDep) -> QueueListOut:
    """Every queue that holds jobs or was ever paused: paused or not, jobs per state."""
    async with store_access():
        return QueueListOut(queues=[QueueOut.of(q) for q in await app.queues()])


async def get_queue(queue: QueueName, app: AppDep) -> QueueOut:
    """One queue. A name the store knows nothing of is a queue with no jobs, not paused
    (200, zero counts): queues need no declaration."""
    async with store_access():
        return await _one(app, queue)


async def pause_queue(queue: QueueName, app: AppDep) -> QueueOut:
    """No worker claims this queue's jobs until it is resumed (running ones finish);
    jobs enqueued meanwhile are stored and wait."""
    async with store_access():
        try:
            await app.pause_queue(queue)
        except ConfigurationError as exc:
            raise HTTPException(404, str(exc)) from None
        return await _one(app, queue)


async def resume_queue(queue: QueueName, app: AppDep) -> QueueOut:
    """Workers claim this queue's jobs again, woken at once."""
    async with store_access():
        try:
            await app.resume_queue(queue)
        except ConfigurationError as exc:
            raise HTTPException(404, str(exc)) from None
        return await _one(app, queue)


def add_queue_routes(
    router: APIRouter, *, name: str = "backburner", writes: Sequence[DependsParam] = (),
) -> None:
    """Add the queue routes to `router`, a router with a `RouterContext` bound (see
    `common`), under its own dependencies; `writes` apply on top of them to pause and
    resume."""
    tags: list[str | Enum] = ["queues"]
    router.add_api_route(
        "/queues", list_queues, methods=["GET"], response_model=QueueListOut,
        name=f"{name}_list_queues", operation_id=f"{name}_list_queues",
        responses=UNAVAILABLE, tags=tags)
    router.add_api_route(
        "/queues/{queue}", get_queue, methods=["GET"], response_model=QueueOut,
        name=f"{name}_get_queue", operation_id=f"{name}_get_queue",
        responses={**BAD_NAME, **UNAVAILABLE}, tags=tags)
    for verb, endpoint in (("pause", pause_queue), ("resume", resume_queue)):
        router.add_api_route(
            f"/queues/{{queue}}/{verb}", endpoint, methods=["POST"], response_model=QueueOut,
            name=f"{name}_{verb}_queue", operation_id=f"{name}_{verb}_queue",
            dependencies=writes, tags=tags,
            responses={**BAD_NAME, **UNAVAILABLE, **FORBIDDEN})
