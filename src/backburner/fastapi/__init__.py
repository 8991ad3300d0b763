"""FastAPI integration: an embedded worker in the lifespan, a router for job status, control
and live updates, and a 202 helper.

    from backburner.fastapi import backburner_lifespan, job_router

    api = FastAPI(lifespan=backburner_lifespan(jobs))
    api.include_router(job_router(jobs, dependencies=[Depends(auth)]))

    @api.post("/register")
    async def register(user: User, background_tasks: DurableBackgroundTasks) -> dict:
        background_tasks.add_task(send_welcome, user.email)   # persisted, retried, tracked
        return {"ok": True}
"""

from backburner.fastapi.background import (
    BackgroundJobs,
    DurableBackgroundTasks,
    register_background,
)
from backburner.fastapi.common import accepted
from backburner.fastapi.lifespan import backburner_lifespan
from backburner.fastapi.metrics import metrics_router
from backburner.fastapi.origins import origin_check
from backburner.fastapi.problems import (
    PROBLEM_JSON,
    VALIDATION_PROBLEM,
    Problem,
    ProblemRoute,
    ValidationProblem,
    close_methods,
    install_problem_details,
    problem,
    problem_responses,
)
from backburner.fastapi.queues import QueueListOut, QueueOut, queue_router
from backburner.fastapi.router import job_router
from backburner.fastapi.schedules import (
    ScheduleListOut,
    ScheduleOut,
    ScheduleRunOut,
    schedule_router,
)
from backburner.fastapi.schemas import JobAccepted, JobOut, JobPageOut

__all__ = [
    "PROBLEM_JSON",
    "VALIDATION_PROBLEM",
    "BackgroundJobs",
    "DurableBackgroundTasks",
    "JobAccepted",
    "JobOut",
    "JobPageOut",
    "Problem",
    "ProblemRoute",
    "QueueListOut",
    "QueueOut",
    "ScheduleListOut",
    "ScheduleOut",
    "ScheduleRunOut",
    "ValidationProblem",
    "accepted",
    "backburner_lifespan",
    "close_methods",
    "install_problem_details",
    "job_router",
    "metrics_router",
    "origin_check",
    "problem",
    "problem_responses",
    "queue_router",
    "register_background",
    "schedule_router",
]
