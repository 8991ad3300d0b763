"""S8: background tasks added from dependencies: a shared function dependency (request ids
for /items and /users) and a class dependency (TaskManager for POST /order).

The seed's TaskManager schedules its own bound methods; a bound method cannot be stored
(its object is not JSON), so this one schedules module-level tasks instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from backburner.fastapi import DurableBackgroundTasks
from examples.demo.routes.common import demo_tasks
from examples.demo.routes.types import ERRORS, Email
from examples.demo.tasks import DemoTasks, log_request


async def common_parameters(
    request_id: Annotated[str, Query(min_length=1, max_length=200)],
    background_tasks: DurableBackgroundTasks,
    tasks: Annotated[DemoTasks, Depends(demo_tasks)],
) -> dict[str, str]:
    background_tasks.add_task(log_request, str(tasks.services.settings.activity_log),
                              request_id)
    return {"request_id": request_id}


class TaskManager:
    def __init__(
        self,
        background_tasks: DurableBackgroundTasks,
        tasks: Annotated[DemoTasks, Depends(demo_tasks)],
    ) -> None:
        self.background_tasks = background_tasks
        self.tasks = tasks

    def schedule_email(self, email: str, content: str) -> None:
        self.background_tasks.add_task(self.tasks.send_order_email, email, content)

    def schedule_notification(self, user_id: int, message: str) -> None:
        self.background_tasks.add_task(self.tasks.send_notification, user_id, message)


Params = Annotated[dict[str, str], Depends(common_parameters)]


def router() -> APIRouter:
    api = APIRouter(tags=["seeds: dependencies"], responses=ERRORS)

    @api.get("/items")
    async def get_items(params: Params) -> dict[str, Any]:
        return {"items": [], "request_id": params["request_id"]}

    @api.get("/users")
    async def get_users(params: Params) -> dict[str, Any]:
        return {"users": [], "request_id": params["request_id"]}

    @api.post("/order")
    async def create_order(
        email: Annotated[Email, Query()],
        task_manager: Annotated[TaskManager, Depends()],
    ) -> dict[str, str]:
        task_manager.schedule_email(email, "order confirmed")
        task_manager.schedule_notification(1, "new order")
        return {"status": "success"}

    return api
