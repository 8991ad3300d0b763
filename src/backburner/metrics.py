"""Prometheus metrics of one Backburner app, in a registry of its own (two apps in one
process never share counters).

Transitions, run times (started to finished, per attempt) and wait times (ready to started)
are counted where they are observed, at the single instrumentation point: each
process counts what it did (its enqueues, its workers' outcomes), as Prometheus expects of
per-process counters. Queue depth and workers are the store's view, read at scrape time, so
every process reports the same totals for them.

    metrics = JobMetrics(jobs)
    text = await metrics.render()      # the exposition format; see fastapi.metrics_router
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from backburner.instrument import Change
from backburner.job import JobState

if TYPE_CHECKING:
    from backburner.app import Backburner

__all__ = ["CONTENT_TYPE", "JobMetrics"]

LIVE_WORKER = 60.0
"""Seconds since its last heartbeat under which a registered worker counts as alive."""


class JobMetrics:
    def __init__(self, app: Backburner) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        self.transitions = Counter(
            "backburner_job_transitions", "Job state changes observed by this process",
            ["task", "queue", "state"], registry=self.registry,
        )
        self.jobs = Gauge(
            "backburner_jobs", "Jobs in the store per queue and state",
            ["queue", "state"], registry=self.registry,
        )
        # Seconds from a fraction of a second to an hour: jobs are short or very long.
        buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
                   3600, float("inf"))
        self.run_seconds = Histogram(
            "backburner_job_run_seconds", "Time an attempt ran, started to finished",
            ["task", "queue"], buckets=buckets, registry=self.registry,
        )
        self.wait_seconds = Histogram(
            "backburner_job_wait_seconds",
            "Time a job was ready (created, or due) before a worker started it",
            ["task", "queue"], buckets=buckets, registry=self.registry,
        )
        self.workers = Gauge(
            "backburner_workers", "Workers with a heartbeat in the last minute",
            registry=self.registry,
        )
        app.instrumentation.observers.append(self._observe)

    def _observe(self, changes: list[Change]) -> None:
        for change in changes:
            if change.progress is None:  # progress updates are not transitions
                self.transitions.labels(change.task, change.queue, change.state).inc()
            if change.waited is not None:
                self.wait_seconds.labels(change.task, change.queue).observe(change.waited)
            if change.ran is not None:
                self.run_seconds.labels(change.task, change.queue).observe(change.ran)

    async def render(self) -> bytes:
        """The current figures; the store's are read now (BackendUnavailableError if it is
        unreachable: let the caller answer 503)."""
        counts = await self.app.backend.counts()
        workers = await self.app.backend.list_workers()
        # Queues of registered tasks show zeros rather than nothing before their first job.
        queues = {queue for queue, _ in counts}
        queues |= {t.defaults.queue for t in self.app.tasks.values()}
        for queue in queues:
            for state in JobState:
                self.jobs.labels(queue, state.value).set(counts.get((queue, state), 0))
        now = time.time()
        self.workers.set(sum(1 for w in workers if now - w.heartbeat_at < LIVE_WORKER))
        return generate_latest(self.registry)
