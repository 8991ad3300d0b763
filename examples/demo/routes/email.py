"""S12: the email service. One job per recipient, a batch in one job, and stats that stay
right across partial failures, retries and restarts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, Field

from backburner.fastapi import problem
from examples.demo.routes.types import ERRORS, Email
from examples.demo.tasks import DemoTasks
from examples.demo.uploads import STORED_NAME


class EmailRequest(BaseModel):
    to: list[Email] = Field(min_length=1, max_length=100)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(max_length=100_000)
    cc: list[Email] | None = Field(None, max_length=20)
    attachments: list[Annotated[str, Field(pattern=STORED_NAME.pattern)]] | None = Field(
        None, max_length=5, description="stored names of CSV files sent to POST /upload"
    )


def router(tasks: DemoTasks) -> APIRouter:
    api = APIRouter(tags=["seeds: email service"], responses=ERRORS)
    settings = tasks.services.settings

    @api.post("/email/send", responses={404: problem("no uploaded file of that name")})
    async def send_email(request: EmailRequest) -> dict[str, Any]:
        for name in request.attachments or []:
            if not STORED_NAME.match(name) or not (settings.upload_dir / name).is_file():
                raise HTTPException(404, f"no uploaded file named {name!r}")
        jobs = await tasks.mail_one.enqueue_many([
            tasks.mail_one.call(to, request.subject, request.body, cc=request.cc,
                                attachments=request.attachments)
            for to in request.to
        ])
        return {"message": f"scheduled {len(request.to)} mails", "recipients": request.to,
                "task_ids": [j.id for j in jobs]}

    @api.post("/email/bulk")
    async def send_bulk(
        recipients: Annotated[list[Email], Body(min_length=1, max_length=1000)],
        subject: Annotated[str, Query(min_length=1, max_length=200)],
        # A query string, so kept short enough for any server's URL limit (the JSON
        # route, /email/send, takes long bodies).
        body: Annotated[str, Query(max_length=1000)],
    ) -> dict[str, Any]:
        job = await tasks.mail_bulk.enqueue(recipients, subject, body)
        return {"message": f"scheduled a batch of {len(recipients)} mails", "task_id": job.id}

    @api.get("/email/stats")
    async def stats() -> dict[str, Any]:
        return await tasks.services.mail_log.stats()

    return api
