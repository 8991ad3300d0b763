"""The durable BackgroundTasks drop-in: same add_task shape, persisted before the response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from backburner import Backburner
from backburner.backends.protocol import Inserted, NewJob
from backburner.fastapi import (
    DurableBackgroundTasks,
    backburner_lifespan,
    job_router,
    register_background,
)

LOG: list[str] = []


def write_log(message: str) -> None:
    """A plain module-level function, never decorated."""
    LOG.append(message)


async def step(name: str, pause: float) -> str:
    """Slower steps first: were they run concurrently, the log would be out of order."""
    await asyncio.sleep(pause)
    LOG.append(f"start {name}")
    await asyncio.sleep(pause)
    LOG.append(f"end {name}")
    return name


class TaskManager:
    """The seeds' class dependency, on durable tasks."""

    def __init__(self, background_tasks: DurableBackgroundTasks) -> None:
        self.background_tasks = background_tasks

    def schedule_email(self, email: str, content: str) -> None:
        send_email = self.background_tasks.app.get_task("send_email")
        self.background_tasks.add_task(send_email, email, content)


def build(tmp_path: Path, *, worker: bool = True) -> tuple[FastAPI, Backburner]:
    jobs = Backburner(f"sqlite:///{tmp_path}/bg.db", poll_interval=0.2)

    @jobs.task(name="send_email")
    async def send_email(email: str, content: str) -> str:
        LOG.append(f"email {email}: {content}")
        return email

    # Every process that builds the app knows the chain runner and the plain function.
    register_background(jobs, write_log, step)
    api = FastAPI(lifespan=backburner_lifespan(jobs, worker=worker, concurrency=8))
    api.include_router(job_router(jobs))

    @api.post("/send-notification/{email}")
    async def notify(email: str, background_tasks: DurableBackgroundTasks) -> dict[str, object]:
        background_tasks.add_task(write_log, f"notification for {email}")
        background_tasks.add_task(send_email, email, content="hi")
        return {"message": "queued"}

    @api.post("/order")
    async def order(email: str, manager: Annotated[TaskManager, Depends()]) -> dict[str, str]:
        manager.schedule_email(email, "order confirmed")
        return {"status": "success"}

    @api.post("/abc")
    async def abc(background_tasks: DurableBackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(step, "A", 0.15)
        background_tasks.add_task(step, "B", 0.05)
        background_tasks.add_task(step, name="C", pause=0.0)
        return {"message": "processing"}

    @api.post("/lambda")
    async def bad(background_tasks: DurableBackgroundTasks) -> None:
        background_tasks.add_task(lambda: None)

    return api, jobs


def wait_completed(client: TestClient, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        jobs = client.get("/jobs", params={"state": "completed"}).json()["jobs"]
        if len(jobs) >= count:
            return jobs
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_jobs_are_stored_before_the_response_and_then_run(tmp_path: Path) -> None:
    LOG.clear()
    api, _ = build(tmp_path, worker=False)
    with TestClient(api) as client:
        assert client.post("/send-notification/ada@example.com").status_code == 200
        # No worker runs in this app: the jobs exist because the response was sent.
        (stored,) = client.get("/jobs").json()["jobs"]
        # Two tasks added in one request: one chain job that runs them in order.
        assert stored["task"] == "backburner.chain" and stored["state"] == "pending"
        steps = [s["task"] for s in stored["kwargs"]["steps"]]
        assert steps == [f"{__name__}.write_log", "send_email"]
    api, _ = build(tmp_path, worker=True)  # a restart with a worker: the work happens
    with TestClient(api) as client:
        (done,) = wait_completed(client, 1)
    assert done["result"] == [None, "ada@example.com"]
    assert LOG == ["notification for ada@example.com", "email ada@example.com: hi"]


def test_tasks_of_one_request_run_in_the_order_added(tmp_path: Path) -> None:
    LOG.clear()
    api, _ = build(tmp_path)
    with TestClient(api) as client:
        assert client.post("/abc").status_code == 200
        (done,) = wait_completed(client, 1)
    assert done["result"] == ["A", "B", "C"]
    assert LOG == ["start A", "end A", "start B", "end B", "start C", "end C"]


def test_class_dependencies_get_the_same_durable_tasks(tmp_path: Path) -> None:
    LOG.clear()
    api, _ = build(tmp_path)
    with TestClient(api) as client:
        assert client.post("/order", params={"email": "b@x.io"}).json() == {"status": "success"}
        (job,) = wait_completed(client, 1)
        assert job["task"] == "send_email" and job["result"] == "b@x.io"


def test_lambdas_are_refused_with_the_reason(tmp_path: Path) -> None:
    api, _ = build(tmp_path)
    with TestClient(api, raise_server_exceptions=True) as client, pytest.raises(
        TypeError, match="lambda has no name a worker could find"
    ):
        client.post("/lambda")


def test_closures_and_bound_methods_are_refused(tmp_path: Path) -> None:
    from backburner.fastapi.background import task_for

    jobs = Backburner("memory://")

    def inner() -> None: ...

    class Service:
        def send(self) -> None: ...

    with pytest.raises(TypeError, match="closure"):
        task_for(jobs, inner)
    with pytest.raises(TypeError, match="bound method"):
        task_for(jobs, Service().send)
    assert task_for(jobs, write_log).name == f"{__name__}.write_log"
    assert task_for(jobs, write_log) is task_for(jobs, write_log)


async def test_a_request_stores_its_jobs_in_one_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    """One job or one chain job: a single store insert, through the package's enqueue path
    (so tracing and events are those of any enqueue)."""
    from backburner.fastapi.background import BackgroundJobs

    jobs = Backburner("memory://")
    register_background(jobs, write_log)
    inserts: list[list[str]] = []
    insert = jobs.backend.insert

    async def counting(batch: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        inserts.append([j.task for j in batch])
        return await insert(batch, connection)

    monkeypatch.setattr(jobs.backend, "insert", counting)
    one = BackgroundJobs(jobs)
    one.add_task(write_log, "a")
    (single,) = await one.store()
    several = BackgroundJobs(jobs)
    several.add_task(write_log, "b")
    several.add_task(write_log, "c")
    (chained,) = await several.store()
    assert inserts == [[f"{__name__}.write_log"], ["backburner.chain"]]
    assert (single.task_name, chained.task_name) == (f"{__name__}.write_log", "backburner.chain")
    await jobs.close()


def test_an_endpoint_that_raises_stores_nothing(tmp_path: Path) -> None:
    """The jobs are stored only once the endpoint has returned: one that fails after
    add_task answers its own error and leaves no job behind."""
    from fastapi import HTTPException

    api, _ = build(tmp_path, worker=False)

    @api.post("/refused")
    async def refused(background_tasks: DurableBackgroundTasks) -> None:
        background_tasks.add_task(write_log, "must not run")
        raise HTTPException(409, "refused after add_task")

    with TestClient(api) as client:
        response = client.post("/refused")
        assert response.status_code == 409
        assert response.json() == {"detail": "refused after add_task"}
        assert client.get("/jobs").json()["jobs"] == []
        # The next request of the same app stores its jobs as usual.
        assert client.post("/send-notification/a@example.com").status_code == 200
        assert len(client.get("/jobs").json()["jobs"]) == 1


def test_an_unavailable_store_answers_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backburner.errors import BackendUnavailableError

    api, jobs = build(tmp_path, worker=False)
    with TestClient(api) as client:
        async def down(batch: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
            raise BackendUnavailableError("the store went away")

        monkeypatch.setattr(jobs.backend, "insert", down)
        response = client.post("/send-notification/a@example.com")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "the store went away" in response.json()["detail"]
