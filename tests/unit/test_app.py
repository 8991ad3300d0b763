from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

import backburner
from backburner import (
    Backburner,
    ConfigurationError,
    JobNotFoundError,
    JobState,
    TaskNotFoundError,
)
from backburner.backends.protocol import Inserted, NewJob
from backburner.backends.sqlite.backend import parse_url


def test_public_surface_is_curated() -> None:
    assert sorted(backburner.__all__) == sorted(
        [
            "AttemptError", "Backburner", "Backend", "BackendError", "BackendUnavailableError",
            "Backoff", "BackburnerError", "BoundTask", "Call", "CancelReason",
            "ConfigurationError",
            "FailureReason", "Flow", "FlowState", "FlowStatus", "InvalidArgumentsError", "Job",
            "JobCancelledError", "JobContext",
            "JobFailedError", "JobNotFoundError", "JobRecord", "JobState", "JobStateError",
            "LeaseLostError", "Progress", "QueueInfo", "Retention", "RetryLater",
            "ScheduleInfo", "SyncCallError", "Task",
            "TaskNotFoundError", "UniqueScope", "Worker", "WorkerCrashedError", "__version__",
        ]
    )
    for name in backburner.__all__:
        assert hasattr(backburner, name)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nope", "must look like"),
        ("ftp://x", "unknown backend scheme"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "memory://"),
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///x.db?bogus=1", "unknown SQLite URL option"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Backburner(url)


def test_sqlite_url_forms() -> None:
    assert parse_url("sqlite:///jobs.db") == ("jobs.db", {})
    assert parse_url("sqlite:////tmp/jobs.db?synchronous=full") == (
        "/tmp/jobs.db", {"synchronous": "full"}
    )


def test_two_apps_do_not_share_tasks() -> None:
    one, two = Backburner("memory://"), Backburner("memory://")

    @one.task
    def only_here() -> None: ...

    assert only_here.name in one.tasks
    assert not two.tasks
    with pytest.raises(TaskNotFoundError):
        two.get_task(only_here.name)


def test_duplicate_task_names_are_refused() -> None:
    app = Backburner("memory://")

    @app.task(name="same")
    def a() -> None: ...

    with pytest.raises(ConfigurationError, match="already registered"):
        @app.task(name="same")
        def b() -> None: ...


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1}, {"retries": 1.5}, {"timeout": 0}, {"timeout": float("inf")},
        {"queue": ""}, {"priority": "high"}, {"retry_on": [42]},
    ],
)
def test_bad_task_options_are_refused(options: dict[str, object]) -> None:
    app = Backburner("memory://")
    with pytest.raises(ConfigurationError):
        app.task(**options)(lambda: None)  # type: ignore[call-overload]


async def test_bad_enqueue_options_are_refused() -> None:
    app = Backburner("memory://")

    @app.task
    async def t() -> None: ...

    with pytest.raises(ConfigurationError, match="delay"):
        t.options(delay=-1)
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        t.options(at=datetime(2030, 1, 1))
    with pytest.raises(ConfigurationError, match="unknown option"):
        t.options(priority=1).options(colour="red")
    job = await t.options(priority=3).options(queue="other").enqueue()
    record = await job.info()
    assert (record.priority, record.queue, record.state) == (3, "other", JobState.PENDING)


def test_default_task_names_are_module_qualified() -> None:
    app = Backburner("memory://")

    @app.task
    def named() -> None: ...

    assert named.name == f"{__name__}.test_default_task_names_are_module_qualified.<locals>.named"


async def test_job_handles_retry_and_delete_like_the_app(app: Backburner) -> None:
    """`Job.retry()` and `Job.delete()` are `app.retry` / `app.delete` on the handle's id:
    the same answers, the same JobNotFoundError."""

    @app.task(name="handles.work")
    async def work(n: int) -> int:
        return n

    job = await work.enqueue(1)
    assert job.task_name == "handles.work"
    assert await job.cancel() is JobState.CANCELLED
    assert await job.retry() is JobState.PENDING
    assert await job.status() is JobState.PENDING
    await app.run_worker(concurrency=1, burst=True, handle_signals=False)
    assert await job.result(timeout=5) == 1
    # Not failed nor cancelled: nothing to retry, the state is answered unchanged.
    assert await job.retry() is JobState.COMPLETED
    assert await job.delete() is True
    assert await app.get_job(job.id) is None
    assert await job.delete() is False
    with pytest.raises(JobNotFoundError):
        await job.retry()
    with pytest.raises(JobNotFoundError):
        await job.info()
    # An id that names no job is answered like a job that is not there.
    nothing = app.job("no\x00job")
    assert await nothing.delete() is False
    with pytest.raises(JobNotFoundError):
        await nothing.retry()


async def test_a_handle_by_id_reads_nothing(app: Backburner) -> None:
    @app.task(name="handles.plain")
    async def plain() -> None: ...

    stored = await plain.options(delay=3600).enqueue()
    handle = app.job(stored.id)
    # Made without I/O: task and state were not read.
    assert (handle.id, handle.task_name, handle.initial_state) == (
        stored.id, None, JobState.PENDING
    )
    assert (await handle.info()).state is JobState.SCHEDULED
    assert await app.job("missing").delete() is False
    assert await app.get_job("missing") is None
    with pytest.raises(JobNotFoundError):
        await app.job("missing").status()


async def test_count_jobs_takes_a_filter_or_the_keyword_filters(app: Backburner) -> None:
    @app.task(name="handles.counted")
    async def counted(n: int) -> None: ...

    await counted.enqueue_many([(1,), (2,)])
    await counted.options(queue="other").enqueue(3)
    assert await app.count_jobs() == 3
    assert await app.count_jobs(queue="other") == 1
    assert await app.count_jobs(states=["pending"], task="handles.counted") == 3
    assert await app.count_jobs(app.job_filter(queue="default")) == 2
    # A filter replaces the keyword filters.
    assert await app.count_jobs(app.job_filter(queue="other"), queue="default") == 1
    with pytest.raises(ConfigurationError, match="nope"):
        await app.count_jobs(states=["nope"])


async def test_every_way_in_stores_a_batch_in_one_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks, bound tasks, flows and the scheduler all go through `enqueue.insert_jobs`:
    one store insert per batch, tracing and events included."""
    from backburner.scheduler import Scheduler
    from backburner.testing import ManualClock, memory_backend

    clock = ManualClock(start=1_000_000.5)
    backend = memory_backend(clock)
    app = Backburner(backend=backend)
    inserts: list[int] = []
    insert = backend.insert

    async def counting(jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        inserts.append(len(jobs))
        return await insert(jobs, connection)

    monkeypatch.setattr(backend, "insert", counting)

    @app.periodic(every=1, catch_up=60)
    @app.task(name="ways.step")
    async def step(n: int = 0) -> int:
        return n

    await step.enqueue(1)
    await step.enqueue_many([(1,), (2,), (3,)])
    await step.options(priority=2).enqueue(1)
    await step.options(priority=2).enqueue_many([(1,), (2,)])
    assert await step.enqueue_many([]) == []
    flow = await app.chain(step.call(1), step.call(2))
    group = await app.group([step.call(1), step.call(2)], then=step.call(3))
    scheduler = Scheduler(app, list(app.periodic_schedules.values()))
    await scheduler.round()
    clock.advance(2.0)
    await scheduler.round()
    assert inserts == [1, 3, 1, 2, 2, 3, 1, 2]
    assert [j.task_name for j in [*flow.jobs, *group.jobs]] == ["ways.step"] * 5
    assert (await flow.jobs[1].info()).state is JobState.SCHEDULED
