"""S1, S2, S5, S13, S14, S16: respond at once, let a durable job do the slow part."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from backburner.fastapi import DurableBackgroundTasks
from examples.demo.routes.common import job_link
from examples.demo.routes.types import ERRORS, Email
from examples.demo.tasks import DemoTasks, write_log

log = logging.getLogger("examples.demo")


class User(BaseModel):
    email: Email
    username: str = Field(min_length=1, max_length=100)


def router(tasks: DemoTasks) -> APIRouter:
    api = APIRouter(tags=["seeds: basics"], responses=ERRORS)
    settings = tasks.services.settings

    @api.get("/send_email/{email}")
    async def send_email(email: Email, request: Request) -> dict[str, Any]:
        """S1/S2: answer in milliseconds; the mail (a slow job) is sent afterwards. The
        answer carries the job id, so the result can be read back later, by id."""
        job = await tasks.send_email.enqueue(email)
        return {"message": f"Email will be sent to {email} in the background. "
                           f"Task ID: {job.id}", **job_link(request, job.id)}

    @api.post("/register")
    async def register(
        background_tasks: DurableBackgroundTasks,
        user: User | None = None,
        email: Annotated[Email | None, Query(description="the other seed's form")] = None,
    ) -> dict[str, str]:
        """S5/S14: register (pydantic body `{email, username}`, or `?email=`), reply at once,
        send the welcome mail over SMTP in the background."""
        if user is None:
            if email is None:
                raise HTTPException(422, "send a JSON body {email, username} or ?email=")
            user = User(email=email, username=email.split("@", 1)[0])
        log.info("user %s registered", user.username)
        background_tasks.add_task(tasks.send_welcome, user.email, user.username)
        return {"message": "registered; the welcome mail is sent in the background"}

    @api.post("/send-notification/{email}")
    async def send_notification(
        email: Email, background_tasks: DurableBackgroundTasks
    ) -> dict[str, str]:
        """S13: a plain function appends a line to a log file, in the background."""
        background_tasks.add_task(write_log, str(settings.notification_log),
                                  f"Sending notification to {email}")
        return {"message": "Notification sent in the background"}

    @api.get("/")
    async def read_main(
        background_tasks: DurableBackgroundTasks,
        name: Annotated[str, Query(max_length=100)] = "Ithome",
    ) -> dict[str, str]:
        """S16: prints "Hi" now; the job prints "Hello {name}~" after a delay."""
        print("Hi", flush=True)
        background_tasks.add_task(tasks.print_msg, name)
        return {"msg": "Hello World"}

    return api
