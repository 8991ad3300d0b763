"""`task.enqueue` (and `insert_jobs` given one job) stores its job through `insert_one`, a
shortcut of the batch's way: the same handle, the same events in the same order, the same
log line and observer calls, whatever the job (plain, delayed, unique and held, another
task's), on the memory store."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from backburner import Backburner
from backburner.enqueue import (
    DEFAULT_OPTIONS,
    EnqueueOptions,
    _insert_batch,
    build_job,
    insert_jobs,
    insert_one,
)
from backburner.handle import Job
from backburner.instrument import Change
from backburner.task import Task

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
async def app() -> AsyncIterator[Backburner]:
    application = Backburner("memory://")
    async with application:
        yield application


def make_task(app: Backburner) -> Task[Any, Any]:
    @app.task(name="t.add", queue="maths")
    async def add(a: int, b: int = 1) -> int:
        return a + b

    return add


async def _via_batch(app: Backburner, job: Any, task: Task[Any, Any] | None) -> Job[Any]:
    (handle,) = await _insert_batch(app, [job], None, task)
    return handle


async def _via_insert_jobs(app: Backburner, job: Any, task: Task[Any, Any] | None) -> Job[Any]:
    (handle,) = await insert_jobs(app, [job], task=task)
    return handle


async def _via_one(app: Backburner, job: Any, task: Task[Any, Any] | None) -> Job[Any]:
    return await insert_one(app, job, task=task)


WAYS: dict[str, Callable[..., Any]] = {
    "batch": _via_batch, "insert_one": _via_one, "insert_jobs": _via_insert_jobs,
}


async def observe(
    app: Backburner, caplog: pytest.LogCaptureFixture, way: str, options: EnqueueOptions,
    *, with_task: bool = True,
) -> list[Any]:
    """What storing one job `way` shows: handles, events, observer calls and log lines, each
    job id replaced by its order of appearance (ids are new every time)."""
    task = make_task(app)
    seen: list[Any] = []
    app.instrumentation.observers.append(lambda changes: seen.append(("observed", changes)))
    sub = app.backend.notifier.subscribe(["wakeup", "job"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="backburner.jobs"):
        for value in (1, 1, 2):  # a unique key's second job is a duplicate
            job = build_job(task, options, (value,), {})
            handle = await WAYS[way](app, job, task if with_task else None)
            seen.append(("handle", handle.id, handle.initial_state, handle.duplicate,
                         handle._task is task))
    seen.extend(("event", e) for e in sub.drain())
    sub.close()
    seen.extend(("log", r.getMessage(), r.backburner) for r in caplog.records)  # type: ignore[attr-defined]
    names: dict[str, str] = {}
    return [_renamed(item, names) for item in seen]


def _renamed(item: Any, names: dict[str, str]) -> Any:
    text = repr(item)
    return UUID.sub(lambda m: names.setdefault(m.group(0), f"job{len(names)}"), text)


@pytest.mark.parametrize(
    "options",
    [
        DEFAULT_OPTIONS,
        EnqueueOptions(delay=30.0),
        EnqueueOptions(unique=True),
        EnqueueOptions(unique_key="k", priority=5, queue="other"),
    ],
    ids=["plain", "delayed", "unique", "unique-key"],
)
@pytest.mark.parametrize("with_task", [True, False])
async def test_insert_one_shows_what_insert_jobs_shows(
    caplog: pytest.LogCaptureFixture, options: EnqueueOptions, with_task: bool
) -> None:
    shown = {}
    for way in WAYS:
        application = Backburner("memory://")
        async with application:
            shown[way] = await observe(application, caplog, way, options, with_task=with_task)
    assert shown["insert_one"] == shown["batch"]
    assert shown["insert_jobs"] == shown["batch"]
    assert any("event" in item for item in shown["insert_one"])


async def test_an_unopened_app_is_opened_first() -> None:
    application = Backburner("memory://")
    task = make_task(application)
    handle = await insert_one(application, build_job(task, DEFAULT_OPTIONS, (1,), {}), task=task)
    assert (await handle.status()).value == "pending"
    await application.close()


async def test_without_observers_or_info_log_no_change_is_made(
    app: Backburner, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Change] = []
    monkeypatch.setattr("backburner.instrument.Change", lambda *a: made.append(a))
    logging.getLogger("backburner.jobs").setLevel(logging.WARNING)
    try:
        task = make_task(app)
        sub = app.backend.notifier.subscribe(["wakeup", "job"])
        await task.enqueue(1)
        assert [e.kind for e in sub.drain()] == ["wakeup", "job"]
        sub.close()
    finally:
        logging.getLogger("backburner.jobs").setLevel(logging.NOTSET)
    assert made == []
