"""The Backburner app every scenario and worker process builds: one no-op task on a given
SQLite file. Both sides build it with this function, so task names always match."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backburner import Backburner, Task

NOOP = "bench.noop"


@dataclass(frozen=True)
class BenchApp:
    app: Backburner
    noop: Task[[], None]


def make_app(db: Path) -> BenchApp:
    app = Backburner(f"sqlite:///{db.resolve()}")

    # An explicit name: the task is registered from a factory, and default names depend on
    # how the importing script was started.
    @app.task(name=NOOP)
    async def noop() -> None:
        return None

    return BenchApp(app, noop)
