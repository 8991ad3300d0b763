"""The asyncio worker: claims jobs in batches, runs them under a concurrency limit, and
acknowledges them in batches.

Side tasks, each supervised (one that dies stops the worker loudly):
- `heartbeat`: renews the lease of every held job; learns of cancel requests and of leases
  lost to another worker (whose attempts are then abandoned, never written);
- `rescue`: takes back jobs whose worker died (lease expired), on the elected leader;
- `prune`: deletes finished jobs past the app's retention, on the elected leader
  (backburner.retention);
- `acks`: writes finished attempts to the store in batches;
- `scheduler`: enqueues the ticks of the app's periodic schedules (backburner.scheduler),
  on every worker that is not in burst mode: the store takes each tick once.
Wake-ups come from the backend's notifier; the poll interval is only a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from backburner import codec
from backburner.backends.attempt_rules import ended_state
from backburner.backends.outage import OutageLog
from backburner.backends.protocol import (
    ClaimedJob,
    Completion,
    Failure,
    Release,
    WorkerInfo,
)
from backburner.context import CancelReason, JobContext
from backburner.errors import BackburnerError, BackendUnavailableError, ConfigurationError
from backburner.execution import Outcome, run_attempt, start_task, unexpected
from backburner.instrument import Change
from backburner.job import JobState, Progress
from backburner.retention import prune_expired
from backburner.scheduler import Scheduler
from backburner.threads import DaemonThreads

if TYPE_CHECKING:
    from backburner.app import Backburner
    from backburner.metrics import JobMetrics
    from backburner.metrics_server import MetricsServer

log = logging.getLogger("backburner.worker")

SUSPECT_PAUSE = 10.0
"""Seconds a busy worker stops claiming so it can take a waiting suspect job alone."""
RESCUE_EVERY = 5.0
"""Default seconds between two sweeps for expired leases (at most lease / 2)."""
LEAD_RETRY = 1.0
"""Seconds between two attempts of a worker that does not lead to take the lead: a dead
leader's place is taken about this long after its leadership lapses (with its leases)."""


class WorkerCrashedError(BackburnerError):
    """A side task of the worker (heartbeat, rescue, acks) died; the worker stopped."""


@dataclass(slots=True)
class _Running:
    job: ClaimedJob
    ctx: JobContext
    task: asyncio.Task[None]


class Worker:
    def __init__(
        self,
        app: Backburner,
        *,
        concurrency: int = 10,
        queues: Sequence[str] | None = None,
        burst: bool = False,
        lease: float = 30.0,
        heartbeat_interval: float | None = None,
        rescue_interval: float | None = None,
        poll_interval: float | None = None,
        grace: float = 30.0,
        max_lost: int = 3,
        batch_size: int = 100,
        handle_signals: bool | None = None,
        name: str | None = None,
        scheduler: bool = True,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
    ) -> None:
        """
        concurrency: jobs run at once. queues: served in this order (default: the queues of
        the app's tasks, "default" first). burst: return once no job is ready and none runs.
        lease: seconds a claim holds a job without a heartbeat; a dead worker's jobs run again
        after at most lease + rescue_interval (default min(lease / 2, 5)). grace: seconds
        running jobs get to finish on shutdown before they are released. max_lost: a job whose
        worker died this many times fails with `worker_lost` (a poison job), whatever its
        retries. batch_size: most jobs claimed in one round trip.
        handle_signals: stop gracefully on SIGTERM/SIGINT (default: when run in the main
        thread and not embedded). scheduler: enqueue the ticks of the app's periodic
        schedules (never in burst mode). metrics_port: serve this process's Prometheus
        metrics on metrics_host:metrics_port (/metrics and /healthz; 0: any free port, see
        `metrics_address`); a port already taken is a ConfigurationError at start.
        """
        if concurrency < 1:
            raise ConfigurationError("concurrency must be >= 1")
        if metrics_port is not None and not 0 <= metrics_port <= 65535:
            raise ConfigurationError(f"metrics_port must be 0-65535, not {metrics_port}")
        if lease <= 0 or grace < 0 or max_lost < 1 or batch_size < 1:
            raise ConfigurationError("lease > 0, grace >= 0, max_lost >= 1, batch_size >= 1")
        self.app = app
        self.backend = app.backend
        self.concurrency = concurrency
        if queues is None:
            found = sorted({t.defaults.queue for t in app.tasks.values()} - {"default"})
            queues = ["default", *found]
        if not queues or any(not isinstance(q, str) or not q for q in queues):
            raise ConfigurationError("queues must be a non-empty list of queue names")
        self.queues = list(dict.fromkeys(queues))
        self.burst = burst
        self.lease = lease
        self.heartbeat_interval = heartbeat_interval or lease / 3
        # A sweep is one indexed statement on one worker (the leader): cheap enough to
        # run often, so a dead worker's jobs run again a few seconds after their lease.
        self.rescue_interval = rescue_interval or min(lease / 2, RESCUE_EVERY)
        self.poll_interval = poll_interval or app.poll_interval
        self.grace = grace
        self.max_lost = max_lost
        self.batch_size = batch_size
        self.handle_signals = handle_signals
        self.scheduler = scheduler and not burst
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._running: dict[tuple[str, int], _Running] = {}
        self._threads = DaemonThreads()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._wake = asyncio.Event()
        # Retried store calls log the outage once, not once per retry of each side task.
        self._reachability = OutageLog("the store", log)
        """Set by the listener when jobs may be ready, and by `stop()`."""
        self._acks: list[Outcome] = []
        self._acking: list[Outcome] = []
        """The batch the ack loop is writing."""
        self._strays: dict[str, int] = {}
        """Jobs the last heartbeat said this worker holds that it never started."""
        self._acks_ready = asyncio.Event()
        self._acks_idle = asyncio.Event()
        self._acks_idle.set()
        self._crash: BaseException | None = None
        self._side_tasks: list[asyncio.Task[None]] = []
        self._leading = False
        """Whether this worker is the housekeeping leader (as its last `lead` call said)."""
        self.processed = 0
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self._metrics_server: MetricsServer | None = None
        if metrics_port is not None:
            _metrics_of(app)  # from now on, so the first scrape sees the first claims

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; running jobs get `grace` seconds, then are released."""
        if not self._stopping.is_set():
            log.info("worker %s stopping", self.id)
        self._stopping.set()
        self._slot_freed.set()
        self._wake.set()

    @property
    def running_jobs(self) -> list[str]:
        return [job_id for job_id, _ in self._running]

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where this worker serves its metrics, once it runs (None: it does not)."""
        if self._metrics_server is None:
            return None
        return self.metrics_host, self._metrics_server.port

    async def run(self) -> None:
        if self.metrics_port is not None:
            # Before the store: a port taken is a mistake to report at once, not after an
            # outage's worth of retries.
            from backburner.metrics_server import MetricsServer

            self._metrics_server = await MetricsServer.start(
                _metrics_of(self.app), self.metrics_host, self.metrics_port)
        try:
            await self._run()
        finally:
            if self._metrics_server is not None:
                await self._metrics_server.close()

    async def _run(self) -> None:
        # A store that is down at start is waited for, as during a run: a worker started
        # in an outage (or before its database) must not crash-loop.
        # The running loop's store: the worker may have been made outside it.
        self.backend = self.app.backend
        await self._with_backend_retry(self.app.open)
        loop = asyncio.get_running_loop()
        signals_installed = self._install_signals(loop)
        self._signals = self.backend.notifier.subscribe(["wakeup", "cancel"], maxsize=1000)
        await self._with_backend_retry(
            lambda: self.backend.register_worker(
                WorkerInfo(self.id, socket.gethostname(), os.getpid(), tuple(self.queues),
                           self.concurrency)
            )
        )
        log.info("worker %s started: queues=%s concurrency=%d", self.id, self.queues,
                 self.concurrency)
        self._side_tasks = [
            self._supervise("heartbeat", self._heartbeat_loop),
            self._supervise("rescue", self._rescue_loop),
            self._supervise("acks", self._ack_loop),
            self._supervise("listener", self._listen),
        ]
        if self.app.retention.ages:
            self._side_tasks.append(self._supervise("prune", self._prune_loop))
        if self.scheduler and self.app.periodic_schedules:
            periodic = Scheduler(self.app, list(self.app.periodic_schedules.values()))
            self._side_tasks.append(self._supervise("scheduler", periodic.run))
        try:
            await self._claim_loop()
        finally:
            self._signals.close()
            await self._shutdown()
            if signals_installed:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if self._crash is not None:
            raise WorkerCrashedError(f"worker {self.id} stopped: {self._crash!r}") from self._crash

    # -- the claim loop --------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        quiet_rounds = 0
        suspects_waiting = False
        paused_since: float | None = None
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            # A job that lost a worker runs alone, and nothing is claimed beside it.
            solo = any(r.job.lost for r in self._running.values())
            # Suspects wait for an idle worker: stop claiming for a while to become one.
            if suspects_waiting and self._running and not solo:
                paused_since = paused_since or time.monotonic()
                waited = time.monotonic() - paused_since
                if waited < SUSPECT_PAUSE:
                    await self._wait_for_slot(SUSPECT_PAUSE - waited)
                    continue
            else:
                paused_since = None
            if free <= 0 or solo:
                await self._wait_for_slot(None)
                continue
            # Cleared before the claim, so a wake-up that arrives during it is not lost.
            self._wake.clear()
            wanted = min(free, self.batch_size)
            began = time.perf_counter()
            try:
                claim = await self.backend.claim(
                    self.id, self.queues, wanted, self.lease, alone=not self._running,
                )
            except BackendUnavailableError as exc:
                self.app.instrumentation.store_call("claim", time.perf_counter() - began)
                await self._pause_after(exc)
                continue
            self.app.instrumentation.store_call("claim", time.perf_counter() - began)
            self.app.instrumentation.claimed(len(claim.jobs))
            self._reachability.reached()
            suspects_waiting = claim.suspects_waiting
            if claim.jobs:
                quiet_rounds = 0
                paused_since = None
                self._start(claim.jobs)
                # A job that lost a worker is claimed alone: more of them may be waiting
                # whatever the claim says, so go round (wait for its slot, claim again)
                # instead of sleeping until a wake-up or the next poll. Otherwise a dead
                # worker's jobs re-ran one per poll interval.
                solo = any(job.lost for job in claim.jobs)
                if len(claim.jobs) >= wanted or self.burst or suspects_waiting or solo:
                    continue
                # A short claim emptied the queues: the next job announces itself with a
                # wake-up, so claiming again at once would only cost an empty round trip
                # per job (the hot path of an idle worker's latency).
            if self.burst:
                if self._running:
                    await self._wait_for_slot(None)
                    continue
                await self._acks_idle.wait()
                quiet_rounds += 1
                if quiet_rounds >= 2:  # nothing ready even after the last acks landed
                    return
                continue
            timeout = self.poll_interval
            if claim.next_run_at is not None:
                timeout = max(0.0, min(timeout, claim.next_run_at - claim.now))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _wait_for_slot(self, timeout: float | None) -> None:
        self._slot_freed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._slot_freed.wait()

    def _start(self, jobs: list[ClaimedJob]) -> None:
        loop = asyncio.get_running_loop()
        changes = []
        # Nobody to tell (no log line, observer or event listener): no Change a job.
        report = self.app.instrumentation.wants_changes("running")
        for job in jobs:
            ctx = JobContext(
                job_id=job.id, task=job.task, queue=job.queue, attempt=job.attempt,
                max_attempts=job.max_attempts, write_progress=self._write_progress, loop=loop,
            )
            self.app.instrumentation.running(job.task, job.queue, 1)
            task = start_task(loop, self._run_one(job, ctx))
            # An eager task (3.12+) may have run to its end inside start_task, its outcome
            # queued and its slot freed: only one still running is registered.
            if not task.done():
                self._running[(job.id, job.attempt)] = _Running(job, ctx, task)
            if report:
                changes.append(Change(job.id, job.task, job.queue, "running", job.attempt,
                                      {"worker": self.id},
                                      waited=max(0.0, job.started_at - job.run_at)))
        self.app.instrumentation.changed(changes)

    async def _run_one(self, job: ClaimedJob, ctx: JobContext) -> None:
        began = time.monotonic()
        task = self.app.tasks.get(job.task)
        try:
            with self.app.spans.execution(job) as span:
                outcome = await run_attempt(job, task, ctx, self._threads)
                self.app.spans.finished(span, outcome)
            # Not dataclasses.replace: it costs ~2 µs a job in field introspection.
            outcome = Outcome(outcome.kind, outcome.job, outcome.write, time.monotonic() - began)
        except asyncio.CancelledError:
            # Cancelled with no reason recorded: the worker is being torn down hard.
            outcome = Outcome("release", job, Release(job.id, job.attempt))
        except Exception as exc:
            # Escaping here would leave the job `running` with no error, its lease renewed
            # by this worker until the stray check releases it to run again, for ever.
            log.error("job %s attempt %d: the attempt raised out of the worker: %r",
                      job.id, job.attempt, exc, exc_info=exc)
            outcome = unexpected(job, task, exc)
        finally:
            self._running.pop((job.id, job.attempt), None)
            self.app.instrumentation.running(job.task, job.queue, -1)
            self._slot_freed.set()
        self._acks.append(outcome)
        self._acks_idle.clear()
        self._acks_ready.set()

    async def _write_progress(self, ctx: JobContext, progress: Progress) -> bool | None:
        data = progress.to_json()
        try:
            accepted = await self.backend.update_progress(
                ctx.job_id, ctx.attempt, codec.dumps(data)
            )
        except BackendUnavailableError as exc:
            # Progress is a snapshot the next update supersedes: an outage must not fail the
            # job (its outcome is acknowledged with retries once the store is back), and
            # whether this attempt still owns the job is the heartbeat's call.
            log.warning("job %s attempt %d: progress not stored, the store is unreachable: %s",
                        ctx.job_id, ctx.attempt, exc)
            return None
        if accepted:
            self.app.instrumentation.changed(
                [Change(ctx.job_id, ctx.task, ctx.queue, "running", ctx.attempt, None, data)]
            )
        return accepted

    # -- acknowledgements ------------------------------------------------------------------
    async def _ack_loop(self) -> None:
        while True:
            await self._acks_ready.wait()
            self._acks_ready.clear()
            batch, self._acks = self._acks, []
            self._acking = batch
            if batch:
                await self._with_backend_retry(partial(self._write_outcomes, batch))
            self._acking = []
            if not self._acks:
                self._acks_idle.set()

    async def _write_outcomes(self, batch: list[Outcome]) -> None:
        completions = [o for o in batch if isinstance(o.write, Completion)]
        failures = [o for o in batch if isinstance(o.write, Failure)]
        releases = [o for o in batch if isinstance(o.write, Release)]
        written: list[Outcome] = []
        for group in (completions, failures, releases):
            if not group:
                continue
            began = time.perf_counter()
            try:
                accepted = await self._write_group(group)
            finally:
                self.app.instrumentation.store_call(
                    type(group[0].write).__name__.lower(), time.perf_counter() - began)
            for outcome, ok in zip(group, accepted, strict=True):
                if ok:
                    written.append(outcome)
                else:
                    log.warning(
                        "job %s attempt %d: result discarded, the attempt no longer owns the job",
                        outcome.job.id, outcome.job.attempt,
                    )
        # Asked after the writes, as the changes were published before: a listener that
        # subscribed during them still hears of every one.
        report = self.app.instrumentation.wants_changes()
        report_completed = report and self.app.instrumentation.wants_changes("completed")
        changes: list[Change] = []
        wake: list[str] = []
        for outcome in written:
            # Nobody to tell: a completion needs no Change (it has nothing else to wake for).
            if not report_completed and isinstance(outcome.write, Completion):
                change = None
            else:
                change = _change_for(outcome)
                if report:
                    changes.append(change)
            # A completion that released the next step of a chain or a group's callback
            # (backburner.flows; same queue) made work ready.
            if (change is not None and change.state in ("pending", "scheduled")) or (
                outcome.job.has_dependents
            ):
                wake.append(outcome.job.queue)
        for outcome in batch:
            if outcome.kind == "abandon":
                log.warning("job %s attempt %d abandoned: its lease was lost",
                            outcome.job.id, outcome.job.attempt)
        self.processed += len(batch)
        self.app.instrumentation.changed(changes)
        if wake:
            self.app.instrumentation.wake(wake)

    async def _write_group(self, group: list[Outcome]) -> list[bool]:
        writes = [o.write for o in group]
        first = writes[0]
        if isinstance(first, Completion):
            return await self.backend.complete([w for w in writes if isinstance(w, Completion)])
        if isinstance(first, Failure):
            return await self.backend.fail([w for w in writes if isinstance(w, Failure)])
        return await self.backend.release([w for w in writes if isinstance(w, Release)])

    # -- side tasks ------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            # Judge only jobs claimed before this heartbeat was sent: the store saw them.
            snapshot = dict(self._running)
            began = time.perf_counter()
            try:
                beat = await self.backend.heartbeat(self.id, self.lease)
            except BackendUnavailableError as exc:
                self._reachability.failed(exc, "heartbeat")
                continue
            finally:
                self.app.instrumentation.store_call("heartbeat", time.perf_counter() - began)
            self._reachability.reached()
            for key, entry in snapshot.items():
                if key not in self._running:
                    continue
                job_id, attempt = key
                if beat.owned.get(job_id) != attempt:
                    log.warning("job %s attempt %d lost its lease; abandoning it", job_id, attempt)
                    entry.ctx.signal_cancel(CancelReason.LOST)
                    entry.task.cancel()
                elif job_id in beat.cancel_requested:
                    log.info("job %s cancel requested; cancelling attempt %d", job_id, attempt)
                    entry.ctx.signal_cancel(CancelReason.CANCELLED)
                    entry.task.cancel()
            await self._give_back_strays(beat.owned)

    async def _give_back_strays(self, owned: dict[str, int]) -> None:
        """A claim whose reply was lost (the connection dropped after the store committed it)
        leaves jobs that the store says this worker holds and that it never started; its own
        heartbeats would renew their leases for ever. Seen by two heartbeats in a row (so no
        claim reply is still on its way), they are released to run again now."""
        known = {job_id for job_id, _ in self._running}
        known.update(o.job.id for o in (*self._acks, *self._acking))
        strays = {job_id: a for job_id, a in owned.items() if job_id not in known}
        confirmed = [Release(job_id, a) for job_id, a in strays.items()
                     if self._strays.get(job_id) == a]
        self._strays = strays
        if not confirmed:
            return
        log.warning("releasing %d job(s) claimed for this worker that it never received "
                    "(a claim reply was lost)", len(confirmed))
        try:
            await self.backend.release(confirmed)
        except BackendUnavailableError as exc:
            log.warning("release of unclaimed jobs failed, will retry: %s", exc)
            return
        self._strays = {j: a for j, a in strays.items() if j not in {r.id for r in confirmed}}
        self.app.instrumentation.wake(self.queues)

    async def _listen(self) -> None:
        """Turn notifications into action: wake the claim loop, cancel a running attempt at
        once instead of at the next heartbeat."""
        while True:
            await self._signals.wait(None)
            for event in self._signals.drain():
                if event.kind == "wakeup":
                    if event.queue in self.queues:
                        self._wake.set()
                elif event.kind == "cancel" and event.job_id is not None:
                    for (job_id, _), entry in list(self._running.items()):
                        if job_id == event.job_id:
                            log.info("job %s cancel requested; cancelling it", job_id)
                            entry.ctx.signal_cancel(CancelReason.CANCELLED)
                            entry.task.cancel()
            if self._signals.overflowed:
                self._signals.overflowed = False
                self._wake.set()

    async def _rescue_loop(self) -> None:
        """Housekeeping, on the elected leader only: one worker sweeps, not all of them.

        Leadership is held on the terms of a lease (`lease` seconds, renewed every
        `rescue_interval` <= lease / 2): a dead leader's leadership lapses when its jobs'
        leases do, and the others, asking every `LEAD_RETRY` seconds, take over at once and
        rescue them. (It was held for 2 x rescue_interval while the others asked every
        rescue_interval: up to 30 s + 15 s with no sweep at all, during a storm of restarts
        for ever.)"""
        while True:
            moved = []
            try:
                now_leading = await self.backend.lead(self.id, self.lease)
                if now_leading != self._leading:
                    log.info("worker %s %s housekeeping", self.id,
                             "now leads" if now_leading else "no longer leads")
                    self._leading = now_leading
                if self._leading:
                    moved = await self.backend.rescue_expired(self.max_lost)
            except BackendUnavailableError as exc:
                self._reachability.failed(exc, "housekeeping")
            if moved:
                self.app.instrumentation.changed(
                    Change(t.id, t.task, t.queue, t.state.value, t.attempt,
                           {"reason": t.reason.value if t.reason else "worker_lost",
                            "rescued": True})
                    for t in moved
                )
                # Local subscribers (this worker) included: the rescued jobs are claimed now,
                # not at the next poll.
                self.app.instrumentation.wake(
                    t.queue for t in moved if t.state is JobState.PENDING
                )
            await asyncio.sleep(
                self.rescue_interval if self._leading else min(self.rescue_interval, LEAD_RETRY)
            )

    async def _prune_loop(self) -> None:
        """Retention, on the leader only (elected by the rescue loop). Its own side task, so
        a long backlog of finished jobs never delays the rescue of expired leases."""
        retention = self.app.retention
        while True:
            await asyncio.sleep(retention.interval_seconds)
            if not self._leading:
                continue
            try:
                await prune_expired(self.backend, retention)
            except BackendUnavailableError as exc:
                self._reachability.failed(exc, "pruning")

    def _supervise(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await body()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                log.critical("worker %s: side task %r died: %r", self.id, name, exc,
                             exc_info=exc)
                self._crash = exc
                self.stop()

        return asyncio.get_running_loop().create_task(guarded(), name=f"backburner-{name}")

    async def _with_backend_retry(self, call: Callable[[], Awaitable[Any]]) -> Any:
        delay = 0.1
        while True:
            try:
                result = await call()
            except BackendUnavailableError as exc:
                self._reachability.failed(exc, getattr(call, "__name__", "a store call"))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._reachability.reached()
            return result

    async def _pause_after(self, exc: BackendUnavailableError) -> None:
        self._reachability.failed(exc, "claim")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await self._stopping.wait()

    # -- shutdown --------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        self._stopping.set()
        tasks = [r.task for r in self._running.values()]
        if tasks:
            log.info("waiting up to %.1fs for %d running job(s)", self.grace, len(tasks))
            await asyncio.wait(tasks, timeout=self.grace)
        late = list(self._running.values())
        for entry in late:
            entry.ctx.signal_cancel(CancelReason.SHUTDOWN)
            entry.task.cancel()
        if late:
            log.info("releasing %d job(s) still running after the grace period", len(late))
            # run_attempt gives each its own short grace (execution._STOP_GRACE) and returns.
            await asyncio.wait([e.task for e in late], timeout=5.0)
        # Final acknowledgements: bounded, so a dead backend cannot keep us alive forever
        # (unacknowledged jobs are recovered through lease expiry). A batch the ack loop has
        # taken but not yet written counts too: cancelling the loop would drop it.
        if (self._acks or not self._acks_idle.is_set()) and self._crash is None:
            self._acks_ready.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10.0):
                    await self._acks_idle.wait()
        for side in self._side_tasks:
            side.cancel()
        await asyncio.gather(*self._side_tasks, return_exceptions=True)
        if self._acks:
            log.warning("%d acknowledgement(s) not written; those jobs will run again",
                        len(self._acks))
        with contextlib.suppress(BackendUnavailableError):
            await self.backend.resign(self.id)
            await self.backend.deregister_worker(self.id)
        self._threads.shutdown()
        log.info("worker %s stopped after %d job(s)", self.id, self.processed)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> bool:
        wanted = self.handle_signals
        if wanted is None:
            wanted = threading.current_thread() is threading.main_thread() and not self.burst
        if not wanted:
            return False
        hits = {"count": 0}

        def on_signal(signum: int) -> None:
            hits["count"] += 1
            if hits["count"] == 1:
                log.info("received %s: graceful stop (grace %.0fs)",
                         signal.Signals(signum).name, self.grace)
                self.stop()
            else:
                log.warning("second signal: releasing running jobs now")
                self.grace = 0
                for entry in list(self._running.values()):
                    entry.ctx.signal_cancel(CancelReason.SHUTDOWN)
                    entry.task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        return True


def _metrics_of(app: Backburner) -> JobMetrics:
    # Imported here: prometheus-client comes with the fastapi extra, and a worker that
    # serves no metrics must not need it.
    try:
        from backburner.metrics import JobMetrics
    except ImportError as exc:
        raise ConfigurationError(
            f"metrics_port needs prometheus-client ({exc}): pip install 'backburner[fastapi]'"
        ) from None
    return JobMetrics.of(app)


def _change_for(outcome: Outcome) -> Change:
    job = outcome.job
    write = outcome.write
    if isinstance(write, Completion):
        return Change(job.id, job.task, job.queue, "completed", job.attempt, ran=outcome.ran)
    if isinstance(write, Release):  # given back unfinished: not a run to measure
        return Change(job.id, job.task, job.queue, "pending", job.attempt, {"released": True})
    assert isinstance(write, Failure)
    if write.retry_in is not None:
        return Change(job.id, job.task, job.queue, "scheduled", job.attempt,
                      {"reason": write.reason.value, "retry_in": round(write.retry_in, 3),
                       "error": write.error.get("type")}, ran=outcome.ran)
    state = ended_state(write.reason).value
    return Change(job.id, job.task, job.queue, state, job.attempt,
                  {"reason": write.reason.value, "error": write.error.get("type")},
                  ran=outcome.ran)


