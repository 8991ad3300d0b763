"""S6, S9, S10, S17: task tracking in the seed's own shape, backed by Backburner's records.

The seed keeps statuses in a dict that a restart empties; here `GET /tasks/{id}` reads the
job record, so the answer survives restarts and is the same job the router shows at
`/jobs/{id}`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from backburner.fastapi import DurableBackgroundTasks, accepted, problem
from backburner.job import JobRecord, JobState
from examples.demo.routes.types import ERRORS
from examples.demo.tasks import DemoTasks, Number


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskInfo(BaseModel):
    id: str
    status: TaskStatus
    progress: int = Field(0, description="0-100")
    result: Any = None
    error: str | None = None
    created_at: str
    updated_at: str


def task_info(record: JobRecord) -> TaskInfo:
    # A job waiting for its start time or for a retry is, to the seed's client, pending.
    status = "pending" if record.state is JobState.SCHEDULED else record.state.value
    progress = 0
    if record.state is JobState.COMPLETED:
        progress = 100
    elif record.progress is not None and record.progress.percent is not None:
        progress = int(record.progress.percent)
    last = record.last_error
    return TaskInfo(
        id=record.id, status=TaskStatus(status), progress=progress, result=record.result,
        error=f"{last.type}: {last.message}" if last else None,
        created_at=record.created_at.isoformat(), updated_at=record.updated_at.isoformat(),
    )


def router(tasks: DemoTasks) -> APIRouter:
    api = APIRouter(tags=["seeds: tracking"], responses=ERRORS)
    jobs = tasks.long_task.app
    tracked = (tasks.long_task.name, tasks.process_data.name)

    @api.post("/tasks")
    async def create_task() -> dict[str, str]:
        """S9: start the long task (10 steps, 10 % each)."""
        job = await tasks.long_task.enqueue()
        return {"task_id": job.id}

    @api.get("/tasks/{task_id}", response_model=TaskInfo,
             responses={404: problem("Task not found")})
    async def get_task(task_id: str) -> TaskInfo:
        record = await jobs.get_job(task_id)
        if record is None:
            raise HTTPException(404, "Task not found")
        return task_info(record)

    @api.get("/tasks", response_model=list[TaskInfo])
    async def list_tasks() -> list[TaskInfo]:
        """The tracked tasks (long task, number processing), newest first."""
        found: list[JobRecord] = []
        for name in tracked:
            found += (await jobs.list_jobs(task=name, limit=100)).jobs
        found.sort(key=lambda r: r.created_at, reverse=True)
        return [task_info(r) for r in found[:100]]

    @api.post("/process")
    async def process(
        background_tasks: DurableBackgroundTasks,
        numbers: Annotated[list[Number] | None, Body(max_length=10_000)] = None,
        data: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, str]:
        """Three seeds share this path, told apart by what they send:
        a JSON list of numbers (S9: doubled with progress, `{processed, results}`),
        `?data=...` (S10: a risky task; `data=error` fails it, the response does not care),
        or nothing (S6: tasks A, B, C run in the order added)."""
        if numbers is not None and data is not None:
            raise HTTPException(422, "send either a list of numbers or ?data=, not both")
        if numbers is not None:
            job = await tasks.process_data.enqueue(numbers)
            return {"task_id": job.id}
        if data is not None:
            background_tasks.add_task(tasks.risky_task, data)
            return {"message": "processing"}
        background_tasks.add_task(tasks.task_a, "data_a")
        background_tasks.add_task(tasks.task_b, "data_b")
        background_tasks.add_task(tasks.task_c, "data_c")
        return {"message": "processing"}

    @api.post("/long-jobs", status_code=202, responses={202: {"description": "accepted"}})
    async def start_long_job(
        request: Request, steps: Annotated[int, Query(ge=1, le=1000)] = 10
    ) -> JSONResponse:
        """S17/S18: a long job answered with 202 Accepted, `Location` of its status, and
        the URLs of its live progress streams."""
        return accepted(await tasks.long_task.enqueue(steps=steps), request)

    return api
