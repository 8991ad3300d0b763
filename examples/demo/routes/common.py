"""Small helpers the route modules share."""

from __future__ import annotations

from typing import Any, cast

from fastapi import Request

from examples.demo.smtp_sink import SmtpSink
from examples.demo.tasks import DemoTasks


def demo_tasks(request: Request) -> DemoTasks:
    """The app's registered tasks, for dependencies that cannot close over them (a class
    dependency such as S8's TaskManager). Kept on the app's state: one per app, no global."""
    return cast(DemoTasks, request.app.state.demo_tasks)


def demo_sink(request: Request) -> SmtpSink | None:
    """The local SMTP sink whose mails `/mails` lists: the caller's, or the one the app
    started in its lifespan (set on the app's state then), or None with SMTP_HOST."""
    return cast(SmtpSink | None, getattr(request.app.state, "demo_sink", None))


def job_link(request: Request, job_id: str) -> dict[str, Any]:
    status = str(request.url_for("backburner_get_job", job_id=job_id))
    return {"task_id": job_id, "status_url": status}
