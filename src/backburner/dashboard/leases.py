"""Whether a running job's worker has stopped responding, from what the store already
keeps: the job's lease (`lease_until`, which every heartbeat of its worker pushes forward)
and the worker's row (`heartbeat_at`). A dead worker's job stays `running` until its lease
passes and a live worker's housekeeping takes it back; this tells the user so meanwhile,
instead of a progress bar that no longer moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from backburner.backends.protocol import WorkerInfo
from backburner.job import JobRecord, JobState


@dataclass(frozen=True, slots=True)
class Stall:
    """A running job whose worker stopped heartbeating (or is gone), and what comes next."""

    worker_id: str
    silent_for: float | None
    """Seconds since the worker's last heartbeat; None when its row is gone (it was
    forgotten after dying, or the job was claimed under an id that never registered)."""
    lease_until: float
    """Store clock, epoch seconds: when the job may be taken back."""
    expired: bool
    """The lease has passed: the job waits only for a live worker's housekeeping."""
    rescuer: bool
    """Some other worker is alive to take the job back."""
    cancelling: bool
    """Its cancel was asked: taken back, it ends `cancelled` instead of running again."""
    next_attempt: int
    max_attempts: int
    lost: int
    """Workers it lost before this one."""


def stalled(job: JobRecord, workers: Iterable[WorkerInfo], now: float,
            stale_after: float) -> Stall | None:
    """The job's stall, or None while its worker keeps heartbeating (or it is not running).

    A worker renews the leases of its jobs every third of the lease by default
    (`Worker.heartbeat_interval`), so the lease its last heartbeat granted is
    `lease_until - heartbeat_at`; once more than half of it went by without a new heartbeat,
    the worker missed at least one and is taken as stopped. A job claimed after that last
    heartbeat has a later `lease_until`, which only makes the judgement more patient.
    `stale_after` decides which other workers count as alive to take the job back."""
    if job.state is not JobState.RUNNING or job.worker_id is None or job.lease_until is None:
        return None
    lease_until = job.lease_until.timestamp()
    by_id = {w.id: w for w in workers}
    worker = by_id.get(job.worker_id)
    silent_for = None if worker is None else max(0.0, now - worker.heartbeat_at)
    expired = lease_until <= now
    if worker is not None and not expired:
        granted = lease_until - worker.heartbeat_at
        if silent_for is not None and silent_for <= granted / 2:
            return None
    rescuer = any(w.id != job.worker_id and now - w.heartbeat_at <= stale_after
                  for w in by_id.values())
    return Stall(worker_id=job.worker_id, silent_for=silent_for, lease_until=lease_until,
                 expired=expired, rescuer=rescuer, cancelling=job.cancel_requested,
                 next_attempt=job.attempt + 1, max_attempts=job.max_attempts, lost=job.lost)


def describe(stall: Stall, when: Callable[[float], str], ago: Callable[[float], str]) -> str:
    """The sentence the job page shows (and the jobs list as a tooltip); `when` and `ago`
    format a store-clock time and a number of seconds as the dashboard does elsewhere."""
    who = f"Worker {stall.worker_id} stopped responding " + (
        "(it is no longer registered)" if stall.silent_for is None
        else f"(last heartbeat {ago(stall.silent_for)})")
    if stall.cancelling:
        then = "cancelled, as was asked"
    else:
        # A lost attempt is not the task's fault: it does not count against max_attempts.
        then = (f"retried (attempt {stall.next_attempt}; a lost worker does not use up one "
                f"of its {stall.max_attempts} attempt(s))")
    if not stall.expired:
        text = f"{who}; its lease expires at {when(stall.lease_until)}, then the job will be " \
               f"{then}"
        if not stall.rescuer:
            text += ", once a live worker takes it back (none is running now)"
    else:
        text = f"{who}; its lease expired at {when(stall.lease_until)}, so the job will be " \
               f"{then}, " + ("as soon as a live worker takes it back (within seconds)"
                              if stall.rescuer else
                              "once a live worker takes it back: none is running now")
    text += "."
    if stall.lost and not stall.cancelling:
        text += (f" It lost {stall.lost} worker(s) before: a job that keeps losing workers "
                 "ends failed (worker_lost) at the workers' max_lost, 3 by default.")
    return text
