"""What several pages read from (or do to) the store beyond one call: stalled jobs, the
queue names a filter offers, a job's linked jobs, and an action applied job by job."""

from __future__ import annotations

from collections.abc import Sequence

from backburner.dashboard.board import Dashboard
from backburner.dashboard.leases import Stall, stalled
from backburner.errors import JobNotFoundError
from backburner.job import JobRecord, JobState

MAX_LINKS = 50
"""Linked jobs shown per relation on a job's page (a group callback may wait for many)."""


async def stalls(board: Dashboard, shown: Sequence[JobRecord]) -> dict[str, Stall]:
    """The running jobs among `shown` whose worker stopped heartbeating, by id. Reads
    the workers and the store's clock only when one of them runs."""
    if not any(j.state is JobState.RUNNING for j in shown):
        return {}
    workers = await board.app.backend.list_workers()
    now = await board.app.backend.now()
    found = {j.id: stalled(j, workers, now, board.stale_after) for j in shown}
    return {job_id: stall for job_id, stall in found.items() if stall is not None}


async def queue_names(board: Dashboard, shown: Sequence[JobRecord], chosen: str) -> list[str]:
    """The queues the filter offers: those of the app's tasks, of live workers, ever
    paused, on this page, and the one chosen. Not `counts()`: it reads every row of the
    store (seconds at a million jobs on SQLite) for names that rarely change."""
    app = board.app
    names = {t.defaults.queue for t in app.tasks.values()}
    names |= set(await app.backend.queue_states())
    for worker in await app.backend.list_workers():
        names.update(worker.queues)
    names.update(j.queue for j in shown)
    if chosen:
        names.add(chosen)
    return sorted(names)


async def links(board: Dashboard, record: JobRecord) -> list[tuple[str, str, JobRecord | None]]:
    """(relation, id, record or None when gone) of the jobs of its chain or group this
    one is linked to: the flow's first job, those it waits for, those waiting for it."""
    wanted: list[tuple[str, str]] = []
    if record.flow_id and record.flow_id != record.id:
        wanted.append(("first job of the flow", record.flow_id))
    wanted += [("waits for", i) for i in record.depends_on[:MAX_LINKS]]
    wanted += [("waited for by", i) for i in record.dependents[:MAX_LINKS]]
    found = []
    for relation, job_id in wanted:
        linked = await board.app.get_job(job_id)
        found.append((relation, job_id, None if linked is None else board.shown(linked)))
    return found


async def apply(board: Dashboard, action: str, ids: Sequence[str]) -> int:
    """Apply one action to each job; how many it changed (the others were not in a
    state that allows it, or are gone)."""
    app = board.app
    done = 0
    for job_id in ids:
        # Read first: the store answers a retry of a pending job with "pending" too, and
        # the notice must tell what really changed.
        record = await app.get_job(job_id)
        if record is None:
            continue
        try:
            if action == "retry":
                ok = record.state in (JobState.FAILED, JobState.CANCELLED) and \
                    await app.retry(job_id) is JobState.PENDING
            elif action == "cancel":
                ok = not record.is_terminal and await app.cancel(job_id) in (
                    JobState.CANCELLED, JobState.RUNNING)
            else:
                ok = await app.delete(job_id)
        except JobNotFoundError:
            ok = False
        done += ok
    return done
