"""The flows resource of `job_router`: a chain or group by the id of its first job."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException

from backburner.errors import ConfigurationError, JobNotFoundError
from backburner.fastapi.common import UNAVAILABLE, AppDep, store_access
from backburner.fastapi.problems import problem
from backburner.fastapi.schemas import FlowOut, JobOut


async def get_flow(flow_id: str, app: AppDep) -> FlowOut:
    """A chain or group (with a callback) by its id, the id of its first job: its state
    and every job's record, with the links between them (see `app.get_flow`)."""
    async with store_access():
        try:
            flow = await app.get_flow(flow_id)
            status = await flow.status()
        except (JobNotFoundError, ConfigurationError):
            raise HTTPException(
                404, f"no chain or group starts with job {flow_id!r}"
            ) from None
    kind: Literal["chain", "group"] = "group" if flow.kind == "group" else "chain"
    return FlowOut(
        id=flow.id, kind=kind, state=status.state,
        failed=status.failed.id if status.failed else None,
        jobs=[JobOut.of(r) for r in status.records],
    )


def add_flow_routes(router: APIRouter, *, name: str) -> None:
    router.add_api_route(
        "/flows/{flow_id}", get_flow, methods=["GET"], response_model=FlowOut,
        name=f"{name}_get_flow", operation_id=f"{name}_get_flow",
        responses={404: problem("no chain or group starts with this job id"), **UNAVAILABLE})
