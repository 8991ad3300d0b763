"""The overview's history: samples of the store taken while someone watches, kept by one
dashboard (never in module state), and the small SVG charts drawn from them.

A sample costs three reads: the counts per queue and state, the workers, and the newest
finished jobs (for wait and run times). It is taken at most once per `interval` seconds, when
a page asks for it; with nobody watching, the dashboard costs the store nothing.

So that the charts show the recent past the moment a page first opens, the first sample also
reads the newest `BACKFILL_LOOKBACK` finished jobs once (one bounded listing, like the
sample's own) and buckets them by the minute they finished in: throughput, failure rate,
wait and run time before the first sample, as far back as those jobs reach (within the
window). Depth and running cannot be rebuilt from finished jobs: they start with the first
sample. Nothing of this touches a worker's path: the jobs' own timestamps are the record."""

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
COST_FACTOR = 20.0
"""A sample that took c seconds is not taken again before 20·c seconds (nor before the
interval): counting a million jobs can take a second or two (SQLite reads every row for
the counts per state), and a watched page must not keep the store that busy; pages in
between show the kept sample."""
BACKFILL_LOOKBACK = 2_000
"""How many of the newest finished jobs the first sample reads for the history before it."""
BACKFILL_BUCKET = 60.0
"""Seconds per point of that history."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """The jobs of one queue that finished in one minute before the first sample."""

    at: float
    """End of the minute, store clock, epoch seconds."""
    completed: int
    failed: int
    wait: float | None
    run: float | None


@dataclass(frozen=True, slots=True)
class QueueSample:
    pending: int = 0
    scheduled: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
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
    backfill: dict[str, list[Bucket]] = field(default_factory=dict)
    """Per queue, the minutes before the first sample (see the module's docstring)."""
    _taken: float | None = None
    _cost: float = 0.0
    """Seconds the last sample took (by `clock`)."""
    _lock: asyncio.Lock | None = None

    async def latest(self) -> Sample:
        """A sample at most `interval` seconds old (taken now if needed), or 20 times
        as long as the last one took to take, if that is longer (`COST_FACTOR`)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            due = max(self.interval, COST_FACTOR * self._cost)
            if self._taken is None or not self.samples or self.clock() - self._taken >= due:
                began = self.clock()
                sample = await self._take()
                cost = self.clock() - began
                if self.samples and sample.at - self.samples[-1].at > max(
                        BACKFILL_BUCKET, 3 * due):
                    # Nobody watched for a while: the old samples would draw a straight
                    # line over the gap; the jobs' own times tell the minutes in between.
                    self.samples.clear()
                if not self.samples:
                    self.backfill = await self._backfill(sample.at)
                self.samples.append(sample)
                self._taken = self.clock()
                self._cost = cost
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
                failed=c.get("failed", 0), cancelled=c.get("cancelled", 0),
                wait=_mean(waits.get(queue)),
                run=_mean(runs.get(queue)))
        return Sample(now, queues, workers)

    async def _backfill(self, now: float) -> dict[str, list[Bucket]]:
        """Minute buckets of the newest finished jobs, from as far back as they reach (the
        oldest minute only if the listing reached past it) up to `now`, within the window."""
        page = await self.app.backend.list_jobs(
            JobFilter(states=(JobState.COMPLETED, JobState.FAILED)), BACKFILL_LOOKBACK)
        # (queue, finished, failed, wait, run) of each job that ran.
        done = [(j.queue, j.finished_at.timestamp(), j.state is JobState.FAILED,
                 max(0.0, (j.started_at - j.run_at).total_seconds()),
                 max(0.0, (j.finished_at - j.started_at).total_seconds()))
                for j in page.jobs if j.finished_at is not None and j.started_at is not None]
        start = now - self.window
        if page.next_cursor is not None and done:
            # More finished jobs lie beyond the listing: the minute its oldest job finished
            # in may be partly unread, so the history begins after it.
            start = max(start, min(t for _, t, _, _, _ in done))
        first = now - BACKFILL_BUCKET * ((now - start) // BACKFILL_BUCKET)
        slots: dict[tuple[str, int], list[tuple[bool, float, float]]] = {}
        for queue, t, failed, wait, run in done:
            if first <= t < now:
                slot = int((t - first) // BACKFILL_BUCKET)
                slots.setdefault((queue, slot), []).append((failed, wait, run))
        buckets: dict[str, list[Bucket]] = {}
        for queue in sorted({q for q, _ in slots}):
            rows = buckets[queue] = []
            for slot in range(int((now - first) // BACKFILL_BUCKET)):
                items = slots.get((queue, slot), [])
                rows.append(Bucket(
                    first + (slot + 1) * BACKFILL_BUCKET,
                    sum(1 for f, _, _ in items if not f), sum(1 for f, _, _ in items if f),
                    _mean([w for _, w, _ in items]), _mean([r for _, _, r in items])))
        return buckets

    def charts(self, queue: str) -> list[Chart]:
        """Depth, running, throughput, failure rate, wait and run time of one queue."""
        history = [(s.at, s.queues.get(queue, QueueSample())) for s in self.samples]
        depth = [(t, float(q.pending + q.scheduled)) for t, q in history]
        running = [(t, float(q.running)) for t, q in history]
        # The minutes before the first sample (kept within the window as samples are).
        newest = history[-1][0] if history else 0.0
        first = history[0][0] if history else float("inf")
        past = [b for b in self.backfill.get(queue, [])
                if newest - self.window <= b.at <= first]
        throughput = [(b.at, (b.completed + b.failed) * 60 / BACKFILL_BUCKET) for b in past]
        failure = [(b.at, 100.0 * b.failed / (b.completed + b.failed)
                    if b.completed + b.failed else 0.0) for b in past]
        wait_past = [(b.at, b.wait) for b in past if b.wait is not None]
        run_past = [(b.at, b.run) for b in past if b.run is not None]
        for (t0, a), (t1, b) in itertools.pairwise(history):
            # Deleted or pruned jobs make a count drop: never a negative rate.
            done = max(0, b.completed - a.completed)
            failed = max(0, b.failed - a.failed)
            minutes = max(t1 - t0, 1e-6) / 60
            throughput.append((t1, (done + failed) / minutes))
            failure.append((t1, 100.0 * failed / (done + failed) if done + failed else 0.0))
        wait = wait_past + [(t, q.wait) for t, q in history if q.wait is not None]
        run = run_past + [(t, q.run) for t, q in history if q.run is not None]
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
