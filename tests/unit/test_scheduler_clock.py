"""R14 for schedules, in process: schedulers whose local clocks are 10 minutes off (either
way) take tick times from the store's clock only, so together they enqueue every tick once,
none early, none skipped."""

from __future__ import annotations

import time

import pytest

from backburner import Backburner
from backburner.scheduler import Scheduler
from backburner.testing import ManualClock, memory_backend


@pytest.mark.parametrize("skew", [-600.0, 600.0])
async def test_skewed_local_clocks_neither_double_nor_miss_ticks(
    skew: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ManualClock(start=1_000_000.5)
    app = Backburner(backend=memory_backend(store))

    @app.periodic(every=1)
    @app.task
    async def beat() -> None: ...

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew)
    first, second = (Scheduler(app, list(app.periodic_schedules.values())) for _ in range(2))
    waits = [await first.round()]
    store.advance(1.0)
    waits += [await first.round(), await second.round()]
    store.advance(3.0)
    waits += [await second.round(), await first.round()]
    keys = sorted(str(j.unique_key) for j in (await app.list_jobs(task=beat.name)).jobs)
    assert keys == [beat_key(app, t) for t in range(1_000_000, 1_000_005)]
    # Until the next tick by the store's clock (less the round itself), whatever ours says.
    assert waits == [pytest.approx(0.5, abs=0.1)] * 5


def beat_key(app: Backburner, tick: float) -> str:
    [schedule] = app.periodic_schedules.values()
    return schedule.tick_key(tick)
