"""The overview's history: samples of the store taken while someone watches, kept by one
dashboard (never in module state), and the small SVG charts drawn from them.

A sample costs three reads: the counts per queue and state, the workers, and the newest
finished jobs (for wait and run times). It is taken at most once per `interval` seconds, when
a page asks for it; with nobody watching, the dashboard costs the store nothing."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from backburner.app import Backburner
from backburner.backends.protocol import JobFilter, WorkerInfo
from backburner.job import JobState

LATENCY_LOOKBACK = 200
"""How many of the newest finished jobs a sample reads for wait and run times."""


@dataclass(frozen=True, slots=True)
class QueueSample:
    pending: int = 0
    scheduled: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    wait: float | None = None
    """Mean seconds from due to start of the jobs finished since the previous sample."""
    run: float | None = None
    """Mean seconds from start to end of those jobs."""


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Store clock, epoch seconds."""
    queues: dict[str, QueueSample]
    workers: list[WorkerInfo]


@dataclass(frozen=True, slots=True)
class Chart:
    """One sparkline: SVG polyline points (numbers only) and its labels."""

    title: str
    points: str
    last: str
    peak: str
    width: int = 160
    height: int = 36


@dataclass
class Sampler:
    app: Backburner
    interval: float = 5.0
    window: float = 30 * 60.0
    clock: Callable[[], float] = time.monotonic
    samples: deque[Sample] = field(default_factory=deque)
    _taken: float | None = None
    _lock: asyncio.Lock | None = None

    async def latest(self) -> Sample:
        """A sample at most `interval` seconds old (taken now if needed)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._taken is None or not self.samples or \
                    self.clock() - self._taken >= self.interval:
                self.samples.append(await self._take())
                self._taken = self.clock()
                while self.samples and self.samples[-1].at - self.samples[0].at > self.window:
                    self.samples.popleft()
            return self.samples[-1]

    async def _take(self) -> Sample:
        backend = self.app.backend
        counts = await backend.counts()
        workers = await backend.list_workers()
        now = await backend.now()
        since = self.samples[-1].at if self.samples else now - self.interval
        finished = await backend.list_jobs(
            JobFilter(states=(JobState.COMPLETED, JobState.FAILED)), LATENCY_LOOKBACK)
        waits: dict[str, list[float]] = {}
        runs: dict[str, list[float]] = {}
        for job in finished.jobs:
            if job.finished_at is None or job.started_at is None:
                continue
            if job.finished_at.timestamp() <= since:
                continue
            waits.setdefault(job.queue, []).append(
                max(0.0, (job.started_at - job.run_at).total_seconds()))
            runs.setdefault(job.queue, []).append(
                max(0.0, (job.finished_at - job.started_at).total_seconds()))
        per: dict[str, dict[str, int]] = {}
        for (queue, state), n in counts.items():
            per.setdefault(queue, {})[state.value] = n
        queues = {}
        for queue in sorted(set(per) | set(waits)):
            c = per.get(queue, {})
            queues[queue] = QueueSample(
                pending=c.get("pending", 0), scheduled=c.get("scheduled", 0),
                running=c.get("running", 0), completed=c.get("completed", 0),
                failed=c.get("failed", 0), wait=_mean(waits.get(queue)),
                run=_mean(runs.get(queue)))
        return Sample(now, queues, workers)

    def charts(self, queue: str) -> list[Chart]:
        """Depth, running, throughput, failure rate, wait and run time of one queue."""
        history = [(s.at, s.queues.get(queue, QueueSample())) for s in self.samples]
        depth = [(t, float(q.pending + q.scheduled)) for t, q in history]
        running = [(t, float(q.running)) for t, q in history]
        throughput: list[tuple[float, float]] = []
        failure: list[tuple[float, float]] = []
        for (t0, a), (t1, b) in itertools.pairwise(history):
            # Deleted or pruned jobs make a count drop: never a negative rate.
            done = max(0, b.completed - a.completed)
            failed = max(0, b.failed - a.failed)
            minutes = max(t1 - t0, 1e-6) / 60
            throughput.append((t1, (done + failed) / minutes))
            failure.append((t1, 100.0 * failed / (done + failed) if done + failed else 0.0))
        wait = [(t, q.wait) for t, q in history if q.wait is not None]
        run = [(t, q.run) for t, q in history if q.run is not None]
        return [
            chart("depth", depth, "{:.0f}"),
            chart("running", running, "{:.0f}"),
            chart("throughput /min", throughput, "{:.1f}"),
            chart("failure %", failure, "{:.0f}%"),
            chart("wait s", [(t, float(v)) for t, v in wait], "{:.2f}s"),
            chart("run s", [(t, float(v)) for t, v in run], "{:.2f}s"),
        ]

    def backlog_growing(self, queue: str) -> bool:
        """Whether the queue's ready jobs grew over the kept samples."""
        ready = [s.queues.get(queue, QueueSample()).pending for s in self.samples]
        return len(ready) >= 2 and ready[-1] > ready[0]


def chart(title: str, values: Sequence[tuple[float, float]], fmt: str) -> Chart:
    width, height, pad = 160, 36, 2
    if not values:
        return Chart(title, "", "-", "-")
    t0, t1 = values[0][0], values[-1][0]
    peak = max(v for _, v in values)
    span = max(t1 - t0, 1e-9)
    top = peak if peak > 0 else 1.0
    points = []
    for t, v in values:
        x = pad + (width - 2 * pad) * ((t - t0) / span if len(values) > 1 else 1.0)
        y = height - pad - (height - 2 * pad) * (v / top)
        points.append(f"{x:.1f},{y:.1f}")
    if len(points) == 1:
        points.insert(0, f"{pad:.1f},{points[0].split(',')[1]}")
    return Chart(title, " ".join(points), fmt.format(values[-1][1]), fmt.format(peak))


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
