"""The reference peer: Huey on SQLite, with the same no-op workload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import SqliteHuey  # type: ignore[import-untyped]

# Huey's consumer polls an empty queue; its defaults (0.1 s, backing off to 10 s) would put
# ~100 ms into every latency sample. Its own knobs turned down to a 1 ms busy poll give it
# its best-case latency (at the cost of an idle process polling SQLite 1000 times a second).
POLL_SECONDS = 0.001
# Result waits poll too (Huey starts at 50 ms); min(50 ms, max_delay) makes that 0.5 ms.
RESULT_POLL_SECONDS = 0.0005
CONSUMER_OPTIONS: dict[str, Any] = {
    "workers": 1,
    "worker_type": "thread",
    "periodic": False,
    "initial_delay": POLL_SECONDS,
    "backoff": 1.0,
    "max_delay": POLL_SECONDS,
}


@dataclass(frozen=True)
class HueyBench:
    huey: SqliteHuey
    noop: Any
    """Returns None, so Huey stores no result (as for a fire-and-forget job)."""
    ping: Any
    """Returns a value, so the enqueuer can wait for its result."""


def make_huey(db: Path) -> HueyBench:
    # fsync=False: commits do not fsync, like Backburner's default synchronous=NORMAL in WAL
    # mode (Huey's default leaves SQLite at FULL, an fsync per commit).
    huey = SqliteHuey("bench", filename=str(db), fsync=False)

    @huey.task()  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    @huey.task()  # type: ignore[untyped-decorator]
    def ping() -> int:
        return 1

    return HueyBench(huey, noop, ping)
