"""The interface every library under test implements (one module per library in
`adapters/`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mode = Literal["drain", "latency", "sleep"]
StoreKind = Literal["sqlite", "redis", "postgresql"]

# Concurrency of an async worker in every scenario (scenario 4 asks for 100; the same
# number in drains keeps one configuration per library), and threads for the sleep
# scenario of thread-based workers.
ASYNC_CONCURRENCY = 100
SLEEP_THREADS = 100


@dataclass(frozen=True)
class WorkerPlan:
    """How to start the workers of one scenario."""

    commands: tuple[tuple[str, ...], ...]
    """One command per OS process the harness starts (a library may fork more itself)."""
    executing: int
    """How many processes run tasks: the start-up barrier waits for that many."""
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Environment:
    """Where a library's programs are: `bin` of its virtualenv."""

    bin: Path

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def program(self, name: str) -> str:
        return str(self.bin / name)


class Peer(ABC):
    key: str
    """Name for `--only`, e.g. `celery` or `backburner-redis`."""
    label: str
    store: StoreKind
    app_module: str
    """The module in bench/peers/ with its tasks and `make_client()`."""
    requirements: tuple[str, ...] = ()
    """Exact pip requirements of its own virtualenv; empty: the harness's own interpreter."""
    packages: tuple[str, ...] = ()
    """Distributions whose installed versions the report lists."""
    sleep_mode: str = ""
    """How the sleep scenario gets its concurrency (async tasks, threads, none)."""

    @property
    def is_backburner(self) -> bool:
        return self.key.startswith("backburner")

    def unavailable(self, env: Environment) -> str | None:
        """Why this system cannot be measured here, or None."""
        return None

    @abstractmethod
    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        """Commands for `processes` worker processes; `mode` "sleep" asks for its best
        concurrency for 10 ms sleeping tasks."""

    @abstractmethod
    def config(self) -> str:
        """How it is configured, and why (goes into RESULTS.md)."""
