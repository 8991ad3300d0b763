"""Prometheus metrics of one Backburner app, in a registry of its own (two apps in one
process never share counters). docs/metrics.md lists every metric.

Two kinds of figures:

- What this process did, counted where it is observed (the single instrumentation point and
  the worker): transitions, outcomes by task and reason, run and wait times, jobs running
  here, claim batch sizes, store round-trip latency. Per-process counters, as Prometheus
  expects: a dashboard sums them over the fleet.
- The store's view, read at scrape time: jobs per queue and state, age of the oldest ready
  job per queue, live workers (per queue too). Every process reports the same figures, so a
  dashboard takes max() over the fleet. Each is cheap at any table size (the stores keep
  counts as jobs move; see Backend.counts), so every process may serve them: no process is
  special, and the figures survive any one of them going away.

    metrics = JobMetrics.of(jobs)      # one per app: the /metrics route and workers share it
    text = await metrics.render()      # the exposition format; see fastapi.metrics_router
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from backburner.backends.protocol import BacklogReads
from backburner.instrument import Change
from backburner.job import JobState

if TYPE_CHECKING:
    from backburner.app import Backburner

__all__ = ["CONTENT_TYPE", "LIVE_WORKER", "JobMetrics"]

LIVE_WORKER = 60.0
"""Seconds since its last heartbeat under which a registered worker counts as alive."""

# Seconds from a fraction of a second to an hour: jobs are short or very long.
_TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
                 3600, float("inf"))
# A store round trip: a fraction of a millisecond (SQLite) to seconds (an overloaded server).
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                  5, float("inf"))
# Jobs per claim, 0 (nothing ready) to the largest batch size in use.
_BATCH_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, float("inf"))

_OUTCOME_OF_STATE = {"scheduled": "retried", "pending": "requeued"}
"""An attempt that ended in one of these states did not end its job: it runs again."""


class JobMetrics:
    @classmethod
    def of(cls, app: Backburner) -> JobMetrics:
        """The app's metrics, made on first use: every caller in a process (the /metrics
        route, each embedded or standalone worker) records into and serves one registry."""
        if isinstance(app.instrumentation.meter, JobMetrics):
            return app.instrumentation.meter
        return cls(app)

    def __init__(self, app: Backburner) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        self._per_process(self.registry)
        self._from_store(self.registry)
        app.instrumentation.observers.append(self._observe)
        if app.instrumentation.meter is None:
            app.instrumentation.meter = self

    def _per_process(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "backburner_job_transitions", "Job state changes observed by this process",
            ["task", "queue", "state"], registry=registry,
        )
        self.outcomes = Counter(
            "backburner_job_outcomes",
            "Attempts this process's workers ended, and jobs its housekeeping rescued, by "
            "outcome (completed, retried, failed, cancelled, released, requeued) and reason",
            ["task", "queue", "outcome", "reason"], registry=registry,
        )
        self.run_seconds = Histogram(
            "backburner_job_run_seconds", "Time an attempt ran, started to finished",
            ["task", "queue"], buckets=_TIME_BUCKETS, registry=registry,
        )
        self.wait_seconds = Histogram(
            "backburner_job_wait_seconds",
            "Time a job was ready (created, or due) before a worker started it",
            ["task", "queue"], buckets=_TIME_BUCKETS, registry=registry,
        )
        self.running_jobs = Gauge(
            "backburner_jobs_running", "Attempts running in this process's workers now",
            ["task", "queue"], registry=registry,
        )
        self.claim_size = Histogram(
            "backburner_claim_batch_size", "Jobs one claim round trip handed to a worker",
            buckets=_BATCH_BUCKETS, registry=registry,
        )
        self.store_seconds = Histogram(
            "backburner_store_round_trip_seconds",
            "Time a worker's call to the store took, by operation",
            ["operation"], buckets=_STORE_BUCKETS, registry=registry,
        )

    def _from_store(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(
            "backburner_jobs", "Jobs in the store per queue and state (the store's view)",
            ["queue", "state"], registry=registry,
        )
        self.oldest_pending = Gauge(
            "backburner_oldest_pending_age_seconds",
            "How long the longest-waiting ready job of a queue has been ready, by the "
            "store's clock (0: none ready; the store's view)",
            ["queue"], registry=registry,
        )
        self.workers = Gauge(
            "backburner_workers", "Workers with a heartbeat in the last minute (the store's view)",
            registry=registry,
        )
        self.queue_workers = Gauge(
            "backburner_queue_workers",
            "Workers with a heartbeat in the last minute serving a queue (the store's view)",
            ["queue"], registry=registry,
        )

    # -- what this process does -------------------------------------------------------------
    def _observe(self, changes: list[Change]) -> None:
        for change in changes:
            if change.progress is None:  # progress updates are not transitions
                self.transitions.labels(change.task, change.queue, change.state).inc()
            if change.waited is not None:
                self.wait_seconds.labels(change.task, change.queue).observe(change.waited)
            if change.ran is not None:
                self.run_seconds.labels(change.task, change.queue).observe(change.ran)
            detail = change.detail or {}
            if change.ran is not None or detail.get("released") or detail.get("rescued"):
                outcome = "released" if detail.get("released") else _OUTCOME_OF_STATE.get(
                    change.state, change.state)
                self.outcomes.labels(change.task, change.queue, outcome,
                                     str(detail.get("reason", ""))).inc()

    def claimed(self, size: int) -> None:
        self.claim_size.observe(size)

    def store_call(self, operation: str, seconds: float) -> None:
        self.store_seconds.labels(operation).observe(seconds)

    def running(self, task: str, queue: str, delta: int) -> None:
        self.running_jobs.labels(task, queue).inc(delta)

    # -- the store's view -------------------------------------------------------------------
    async def render(self) -> bytes:
        """The current figures; the store's are read now (BackendUnavailableError if it is
        unreachable: let the caller answer 503)."""
        backend = self.app.backend
        counts = await backend.counts()
        oldest = await backend.oldest_pending() if isinstance(backend, BacklogReads) else {}
        workers = await backend.list_workers()
        # Queues of registered tasks show zeros rather than nothing before their first job.
        queues = {queue for queue, _ in counts}
        queues |= {t.defaults.queue for t in self.app.tasks.values()}
        now = time.time()
        live = [w for w in workers if now - w.heartbeat_at < LIVE_WORKER]
        queues |= {q for w in live for q in w.queues}
        for queue in queues:
            for state in JobState:
                self.jobs.labels(queue, state.value).set(counts.get((queue, state), 0))
            self.oldest_pending.labels(queue).set(oldest.get(queue, 0.0))
            self.queue_workers.labels(queue).set(sum(1 for w in live if queue in w.queues))
        self.workers.set(len(live))
        return generate_latest(self.registry)
