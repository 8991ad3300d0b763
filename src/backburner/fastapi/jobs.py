"""The jobs resource of `job_router`: list, count, read one, cancel, retry, delete, and the
bulk actions over a filter."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.params import Depends as DependsParam
from fastapi.responses import Response

from backburner import bulk
from backburner.app import Backburner
from backburner.backends.protocol import JobFilter
from backburner.bulk import Action
from backburner.errors import ConfigurationError, JobNotFoundError
from backburner.fastapi.common import (
    JOB_NOT_FOUND,
    UNAVAILABLE,
    AppDep,
    forbidden,
    store_access,
)
from backburner.fastapi.problems import problem
from backburner.fastapi.schemas import BulkIn, BulkOut, JobCountOut, JobOut, JobPageOut
from backburner.job import JobState

FORBIDDEN = forbidden("jobs")
CURSOR = r"^\d{1,18}(:[!-~]{0,200})?$"


@dataclasses.dataclass(frozen=True, slots=True)
class FilterQuery:
    """The job filters of `GET /jobs` and `GET /jobs/count`, as sent."""

    states: tuple[JobState, ...]
    task: str | None
    queue: str | None
    search: str | None
    created_after: float | None
    created_before: float | None

    def of(self, app: Backburner) -> JobFilter | None:
        """The filter, or None when it names what no store can hold (an empty queue name, a
        NUL): it matches no job, which is the answer, not an error."""
        try:
            return app.job_filter(
                states=self.states, task=self.task, queue=self.queue, search=self.search,
                created_after=self.created_after, created_before=self.created_before,
            )
        except ConfigurationError:
            return None


def filter_query(
    state: Annotated[list[JobState] | None, Query()] = None,
    task: Annotated[str | None, Query(max_length=500)] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    created_after: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    created_before: Annotated[float | None, Query(allow_inf_nan=False)] = None,
) -> FilterQuery:
    """One declaration of the filter query parameters, for every route that takes them."""
    return FilterQuery(tuple(state or ()), task, queue, search, created_after, created_before)


Filters = Annotated[FilterQuery, Depends(filter_query)]


async def count_jobs(
    query: Filters, app: AppDep, action: Annotated[Action | None, Query()] = None,
) -> JobCountOut:
    """How many jobs match the filters of `GET /jobs` (exact). With `action`, only
    those the bulk action would touch (narrowed to its states)."""
    filter = query.of(app)
    counted = filter if action is None or filter is None else bulk.narrowed(filter, action)
    async with store_access():
        return JobCountOut(count=0 if counted is None else await app.count_jobs(counted))


async def bulk_jobs(action: Action, body: BulkIn, app: AppDep) -> BulkOut:
    """Retry, cancel or delete every job matching the filter, in the states where the
    action applies (retry: failed, cancelled; cancel: pending, scheduled, running;
    delete: completed, failed, cancelled). Needs `confirm: true`; with
    `expected_count`, refused (409) when the count changed since the user saw it."""
    filter = FilterQuery(tuple(body.states), body.task, body.queue, body.search,
                         body.created_after, body.created_before).of(app)
    async with store_access():
        if body.expected_count is not None:
            target = None if filter is None else bulk.narrowed(filter, action)
            count = 0 if target is None else await app.count_jobs(target)
            if count != body.expected_count:
                raise HTTPException(
                    409, f"{count} jobs match now, not {body.expected_count}: count again"
                )
        if filter is None:
            return BulkOut(action=action, matched=0, changed=0, skipped=0)
        result = await bulk.apply(app, filter, action, limit=body.limit)
    return BulkOut(action=action, matched=result.matched, changed=result.changed,
                   skipped=result.skipped)


async def get_job(job_id: str, app: AppDep) -> JobOut:
    """The job's state, progress, result and every attempt's error."""
    async with store_access():
        record = await app.get_job(job_id)
    if record is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    return JobOut.of(record)


async def list_jobs(
    query: Filters,
    app: AppDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    # At most 18 digits: every cursor fits a signed 64-bit integer in every store (a
    # Redis cursor adds ":<job id>"; see store_cursor).
    cursor: Annotated[str | None, Query(max_length=219, pattern=CURSOR,
                                        description="a `next_cursor`")] = None,
) -> JobPageOut:
    """Jobs, newest first; pass `next_cursor` back as `cursor` for the next page (a
    page may be short, even empty, with a next cursor: `search` and the creation times
    are checked on a bounded number of jobs per page). `search`: case-insensitive, in
    arguments, results and errors; `created_after`/`created_before`: epoch seconds."""
    filter = query.of(app)
    if filter is None:
        return JobPageOut(jobs=[], next_cursor=None)
    async with store_access():
        try:
            page = await app.list_jobs(filter=filter, limit=limit,
                                       cursor=store_cursor(app, cursor))
        except ConfigurationError as exc:
            raise HTTPException(400, str(exc)) from None
    return JobPageOut(jobs=[JobOut.of(r) for r in page.jobs], next_cursor=page.next_cursor)


async def cancel_job(job_id: str, app: AppDep) -> JobOut:
    """Cancel a waiting job now, or ask the worker of a running one to stop it."""
    async with store_access():
        try:
            state = await app.cancel(job_id)
        except JobNotFoundError:
            raise HTTPException(404, f"no job with id {job_id!r}") from None
        record = await app.get_job(job_id)
    if state in (JobState.COMPLETED, JobState.FAILED) or record is None:
        raise HTTPException(409, f"job {job_id} already ended {state.value}")
    return JobOut.of(record)


async def retry_job(job_id: str, app: AppDep) -> JobOut:
    """Run a failed or cancelled job again, with a fresh set of attempts."""
    async with store_access():
        try:
            state = await app.retry(job_id)
        except JobNotFoundError:
            raise HTTPException(404, f"no job with id {job_id!r}") from None
        record = await app.get_job(job_id)
    if state is not JobState.PENDING or record is None:
        raise HTTPException(
            409, f"job {job_id} is {state.value}; only failed or cancelled jobs can be retried"
        )
    return JobOut.of(record)


async def delete_job(job_id: str, app: AppDep) -> Response:
    """Forget a job that is not running (cancel it first)."""
    async with store_access():
        if await app.get_job(job_id) is None:
            raise HTTPException(404, f"no job with id {job_id!r}")
        if not await app.delete(job_id):
            raise HTTPException(409, f"job {job_id} is running; cancel it first")
    return Response(status_code=204)


def store_cursor(app: Backburner, cursor: str | None) -> str | None:
    """A cursor of the documented form in the form `app`'s store reads: a sequence number,
    and for Redis also the job id that breaks ties (empty: before every job of that
    number). So every cursor the schema allows is one the store takes."""
    if cursor is None:
        return None
    seq, _, job_id = cursor.partition(":")
    if type(app.backend).__module__.startswith("backburner.backends.redis"):
        return f"{seq}:{job_id}"
    return seq


def add_count_and_bulk_routes(
    router: APIRouter, *, name: str, writes: Sequence[DependsParam],
) -> None:
    """`GET /jobs/count` and `POST /jobs/bulk/{action}`: before the `/jobs/{job_id}` routes,
    which would otherwise take "count" and "bulk" as ids."""
    router.add_api_route(
        "/jobs/count", count_jobs, methods=["GET"], response_model=JobCountOut,
        name=f"{name}_count_jobs", operation_id=f"{name}_count_jobs", responses=UNAVAILABLE)
    router.add_api_route(
        "/jobs/bulk/{action}", bulk_jobs, methods=["POST"], response_model=BulkOut,
        name=f"{name}_bulk_jobs", operation_id=f"{name}_bulk_jobs", dependencies=writes,
        responses={**UNAVAILABLE, **FORBIDDEN, 400: problem("the body is not JSON"),
                   409: problem("the count is not expected_count any more")})


def add_job_routes(router: APIRouter, *, name: str, writes: Sequence[DependsParam]) -> None:
    """One job by id (read, cancel, retry, delete) and the listing."""
    router.add_api_route(
        "/jobs/{job_id}", get_job, methods=["GET"], response_model=JobOut,
        name=f"{name}_get_job", operation_id=f"{name}_get_job",
        responses={**JOB_NOT_FOUND, **UNAVAILABLE})
    router.add_api_route(
        "/jobs", list_jobs, methods=["GET"], response_model=JobPageOut,
        name=f"{name}_list_jobs", operation_id=f"{name}_list_jobs",
        responses={**UNAVAILABLE, 400: problem("a cursor of another store")})
    router.add_api_route(
        "/jobs/{job_id}/cancel", cancel_job, methods=["POST"], response_model=JobOut,
        name=f"{name}_cancel_job", operation_id=f"{name}_cancel_job", dependencies=writes,
        responses={**JOB_NOT_FOUND, **UNAVAILABLE, **FORBIDDEN, 409: problem("already finished")})
    router.add_api_route(
        "/jobs/{job_id}/retry", retry_job, methods=["POST"], response_model=JobOut,
        name=f"{name}_retry_job", operation_id=f"{name}_retry_job", dependencies=writes,
        responses={**JOB_NOT_FOUND, **UNAVAILABLE, **FORBIDDEN,
                   409: problem("not failed or cancelled")})
    router.add_api_route(
        "/jobs/{job_id}", delete_job, methods=["DELETE"], status_code=204,
        name=f"{name}_delete_job", operation_id=f"{name}_delete_job", response_class=Response,
        dependencies=writes,
        responses={**JOB_NOT_FOUND, **UNAVAILABLE, **FORBIDDEN, 409: problem("the job is running")})
