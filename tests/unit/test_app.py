from __future__ import annotations

from datetime import datetime

import pytest

import backburner
from backburner import Backburner, ConfigurationError, JobState, TaskNotFoundError
from backburner.backends.sqlite.backend import parse_url


def test_public_surface_is_curated() -> None:
    assert sorted(backburner.__all__) == sorted(
        [
            "AttemptError", "Backburner", "Backend", "BackendError", "BackendUnavailableError",
            "Backoff", "BackburnerError", "BoundTask", "Call", "ConfigurationError",
            "FailureReason", "Flow", "FlowState", "FlowStatus", "InvalidArgumentsError", "Job",
            "JobCancelledError", "JobContext",
            "JobFailedError", "JobNotFoundError", "JobRecord", "JobState", "JobStateError",
            "LeaseLostError", "Progress", "QueueInfo", "Retention", "RetryLater",
            "ScheduleInfo", "Task",
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
