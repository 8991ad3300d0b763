from __future__ import annotations

import asyncio

import pytest

from backburner import Backburner, WorkerCrashedError
from backburner.backends.memory import MemoryBackend


async def test_a_dying_side_task_stops_the_worker_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = MemoryBackend()
    app = Backburner(backend=backend)

    async def broken_heartbeat(worker_id: str, lease: float) -> None:
        raise RuntimeError("heartbeat exploded")

    monkeypatch.setattr(backend, "heartbeat", broken_heartbeat)
    worker = app.worker(heartbeat_interval=0.01, handle_signals=False)
    with pytest.raises(WorkerCrashedError, match="heartbeat exploded"):
        await asyncio.wait_for(worker.run(), 5)


async def test_backend_outage_is_ridden_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from backburner import BackendUnavailableError

    backend = MemoryBackend()
    app = Backburner(backend=backend)

    @app.task
    async def ok() -> str:
        return "ok"

    job = await ok.enqueue()
    real_claim = backend.claim
    failures = {"left": 3}

    async def flaky_claim(*args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise BackendUnavailableError("down for a moment")
        return await real_claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "claim", flaky_claim)
    worker = app.worker(handle_signals=False, poll_interval=0.05)
    run = asyncio.create_task(worker.run())
    assert await job.result(timeout=10) == "ok"
    worker.stop()
    await asyncio.wait_for(run, 5)


def test_worker_options_are_checked() -> None:
    from backburner import ConfigurationError

    app = Backburner("memory://")
    with pytest.raises(ConfigurationError):
        app.worker(concurrency=0)
    with pytest.raises(ConfigurationError):
        app.worker(queues=[])
