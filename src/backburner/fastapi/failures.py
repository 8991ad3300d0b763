"""The failures resource of `job_router`: failed jobs grouped by fingerprint, and a retry of
one group."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.params import Depends as DependsParam

from backburner import failures
from backburner.fastapi.common import UNAVAILABLE, AppDep, forbidden, store_access
from backburner.fastapi.schemas import FailureGroupOut, RetriedOut


async def list_failures(
    app: AppDep, scan: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[FailureGroupOut]:
    """Failed jobs grouped by fingerprint (task, exception type, message template),
    over the most recent `scan` failed jobs, the largest group first."""
    async with store_access():
        groups = await failures.failure_groups(app, scan=scan)
    return [FailureGroupOut(**{**dataclasses.asdict(g), "job_ids": list(g.job_ids),
                               "queues": list(g.queues)}) for g in groups]


async def retry_failures(
    fingerprint: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
    app: AppDep,
    scan: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> RetriedOut:
    """Retry every job of the group among the most recent `scan` failed jobs."""
    async with store_access():
        retried = await failures.retry_failure_group(app, fingerprint, scan=scan)
    return RetriedOut(retried=retried)


def add_failure_routes(
    router: APIRouter, *, name: str, writes: Sequence[DependsParam],
) -> None:
    router.add_api_route(
        "/failures", list_failures, methods=["GET"], response_model=list[FailureGroupOut],
        name=f"{name}_failures", operation_id=f"{name}_failures", responses=UNAVAILABLE)
    router.add_api_route(
        "/failures/{fingerprint}/retry", retry_failures, methods=["POST"],
        response_model=RetriedOut, name=f"{name}_retry_failures",
        operation_id=f"{name}_retry_failures", dependencies=writes,
        responses={**UNAVAILABLE, **forbidden("jobs")})
