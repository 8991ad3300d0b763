"""FastAPI integration: an embedded worker in the lifespan, a router for job status, control
and live updates, and a 202 helper.

    from backburner.fastapi import backburner_lifespan, job_router

    api = FastAPI(lifespan=backburner_lifespan(jobs))
    api.include_router(job_router(jobs, dependencies=[Depends(auth)]))
"""

from backburner.fastapi.lifespan import backburner_lifespan
from backburner.fastapi.router import accepted, job_router
from backburner.fastapi.schemas import JobAccepted, JobOut, JobPageOut

__all__ = ["JobAccepted", "JobOut", "JobPageOut", "accepted", "backburner_lifespan", "job_router"]
