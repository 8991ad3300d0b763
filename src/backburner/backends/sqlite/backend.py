"""The embedded default: jobs in one SQLite file shared by any number of local processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from backburner import codec
from backburner.backends import records
from backburner.backends.attempt_rules import ended_state
from backburner.backends.flow_rules import (
    CancelWaiting,
    FlowNode,
    MakeReady,
    Plan,
    Read,
    WaitLess,
    dependency_error,
    drive,
    plan_cancel,
    plan_rearm,
    plan_release,
)
from backburner.backends.limit_rules import (
    PARKED_ON,
    LimitedJob,
    groups_of,
    plan_admission,
    rate_windows,
    slots_freed,
)
from backburner.backends.protocol import (
    TERMINAL_STATES,
    Claim,
    ClaimedJob,
    Completion,
    Failure,
    Heartbeat,
    Inserted,
    JobFilter,
    JobPage,
    NewJob,
    QueueState,
    Release,
    ScheduleState,
    Transition,
    WorkerInfo,
)
from backburner.backends.records import (
    claim_problems,
    error_entry,
    id_list,
    invalid_row_error,
    record_from_row,
    seq_cursor,
)
from backburner.backends.sql_files import load_queries
from backburner.backends.sqlite import schema
from backburner.backends.sqlite.connection import SQLiteConnection, WriteTransaction
from backburner.backends.sqlite.datagrams import DatagramNotifier
from backburner.errors import ConfigurationError
from backburner.job import WAITING_RUN_AT, FailureReason, JobRecord, JobState
from backburner.notify import Event, Notifier

Q = load_queries("backburner.backends.sqlite")
PRUNE_WINDOW = 5000
"""Most rows one statement of the retention pruner looks at (see `_prune_window`)."""


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(
            f"{url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db "
            "(three slashes, then the path)"
        )
    path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"{url!r} names no file; use memory:// for an in-process store"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"synchronous", "busy_timeout", "max_wait"}
    if unknown:
        raise ConfigurationError(f"unknown SQLite URL option(s): {', '.join(sorted(unknown))}")
    return path, options


class SQLiteBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        path, options = parse_url(url)
        self.path = os.path.abspath(path)
        try:
            self._db = SQLiteConnection(
                self.path,
                synchronous=options.get("synchronous", "normal"),
                busy_timeout=float(options.get("busy_timeout", 5.0)),
                max_wait=float(options.get("max_wait", 30.0)),
            )
        except ValueError as exc:
            raise ConfigurationError(f"{url!r}: {exc}") from exc
        self._notifier = DatagramNotifier(self.path)
        self._opened_in: int | None = None
        self._prune_from = 0
        """Where the retention pruner's walk goes on (a rowid; 0: from the oldest job)."""

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    async def open(self, *, create: bool = True) -> None:
        if self._opened_in == os.getpid():
            return
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            raise ConfigurationError(f"directory {directory!r} for {self.url!r} does not exist")
        if not create:
            # Looked at read-only first: connecting would create the file (and set WAL).
            await asyncio.to_thread(schema.check_exists, self.path)
        await self._db.run(schema.migrate)
        self._opened_in = os.getpid()

    def for_another_loop(self) -> SQLiteBackend:
        return type(self)(self.url)

    async def close(self) -> None:
        await self._notifier.close()
        await self._db.close()
        self._opened_in = None

    async def migrate(self) -> list[int]:
        return await self._db.run(schema.migrate)

    # -- transitions -----------------------------------------------------------------------
    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        if connection is not None:
            raise ConfigurationError(
                "enqueueing inside the application's transaction needs the PostgreSQL backend"
            )
        return await self._db.run(_insert, jobs)

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        alone: bool = False,
    ) -> Claim:
        return await self._db.run(_claim, worker_id, list(queues), limit, lease, alone)

    async def heartbeat(self, worker_id: str, lease: float) -> Heartbeat:
        return await self._db.run(_heartbeat, worker_id, lease)

    async def update_progress(self, job_id: str, attempt: int, progress: str) -> bool:
        return await self._db.run(_update_progress, job_id, attempt, progress)

    async def complete(self, items: Sequence[Completion]) -> list[bool]:
        return self._woken(await self._db.run(_complete, items))

    async def fail(self, items: Sequence[Failure]) -> list[bool]:
        return self._woken(await self._db.run(_fail, items))

    async def release(self, items: Sequence[Release]) -> list[bool]:
        return self._woken(await self._db.run(_release, items))

    def _woken(self, outcome: Outcome) -> list[bool]:
        """Wake the workers of queues where a freed slot made parked jobs ready."""
        accepted, woken = outcome
        if woken:
            self._notifier.publish([Event("wakeup", q) for q in sorted(woken)])
        return accepted

    async def cancel(self, job_id: str) -> JobState | None:
        return await self._db.run(_cancel, job_id)

    async def retry(self, job_id: str) -> JobState | None:
        return await self._db.run(_retry, job_id)

    async def delete(self, job_id: str) -> bool:
        return await self._db.run(_delete, job_id)

    async def rescue_expired(self, max_lost: int) -> list[Transition]:
        moved, woken = await self._db.run(_rescue_expired, max_lost)
        self._woken(([], woken))
        return moved

    async def prune(self, older_than: Mapping[JobState, float], limit: int) -> int:
        ages = {s: float(older_than[s]) for s in TERMINAL_STATES if s in older_than}
        pruned = 0
        # Window after window (each its own short transaction, on the thread: a window may
        # look at PRUNE_WINDOW rows), from where the previous call stopped, until `limit`
        # jobs went or the walk reached the jobs created after the cutoff (then the next
        # call starts over from the oldest).
        while ages and pruned < limit:
            deleted, self._prune_from = await self._db.run_in_thread(
                _prune_window, ages, limit - pruned, self._prune_from
            )
            pruned += deleted
            if self._prune_from == 0:
                break
        return pruned

    # -- reads -----------------------------------------------------------------------------
    async def get(self, job_id: str) -> JobRecord | None:
        return await self._db.run(_get, job_id)

    async def list_jobs(
        self, filter: JobFilter, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return await self._db.run_in_thread(_list_jobs, filter, limit, cursor)

    async def count_jobs(self, filter: JobFilter) -> int:
        return await self._db.run_in_thread(_count_jobs, filter)

    async def counts(self) -> dict[tuple[str, JobState], int]:
        return await self._db.run(_counts)  # a few rows (migration 10): no thread hop

    async def oldest_pending(self) -> dict[str, float]:
        return await self._db.run(_oldest_pending)

    # -- housekeeping leader ---------------------------------------------------------------
    async def lead(self, worker_id: str, ttl: float) -> bool:
        return await self._db.run(_lead, worker_id, ttl)

    async def resign(self, worker_id: str) -> None:
        await self._db.run(_resign, worker_id)

    # -- periodic schedules ----------------------------------------------------------------
    async def now(self) -> float:
        # Every process sharing the file runs on the machine that holds it: one clock.
        return time.time()

    async def schedule_states(self) -> dict[str, ScheduleState]:
        return await self._db.run(_schedule_states)

    async def set_schedule_paused(self, name: str, paused: bool) -> None:
        await self._db.run(_set_schedule_paused, name, paused)

    # -- queues ----------------------------------------------------------------------------
    async def set_queue_paused(self, queue: str, paused: bool) -> None:
        await self._db.run(_set_queue_paused, queue, paused)

    async def queue_states(self) -> dict[str, QueueState]:
        return await self._db.run(_queue_states)

    # -- workers ---------------------------------------------------------------------------
    async def register_worker(self, info: WorkerInfo) -> None:
        await self._db.run(_register_worker, info)

    async def deregister_worker(self, worker_id: str) -> None:
        await self._db.run(_deregister_worker, worker_id)

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._db.run(_list_workers)

    # -- diagnostics -----------------------------------------------------------------------
    async def integrity_check(self) -> str:
        return await self._db.run_in_thread(
            lambda c: str(c.execute("PRAGMA integrity_check").fetchone()[0])
        )


# The functions below run on the connection's thread.


def _insert(conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[Inserted]:
    now = time.time()
    rows = [
        {
            "id": j.id,
            "task": j.task,
            "queue": j.queue,
            "priority": j.priority,
            "args": j.args,
            "kwargs": j.kwargs,
            "max_attempts": j.max_attempts,
            "timeout": j.timeout,
            "now": now,
            "run_at": max(j.run_at or 0.0, now + j.delay) if j.delay > 0 else (j.run_at or now),
            "unique_key": j.unique_key,
            "unique_scope": j.unique_scope.value,
            "unique_until": now + j.unique_for if j.unique_for is not None else None,
            "limit_concurrency": j.limit_concurrency,
            "limit_key": j.limit_key,
            "limit_key_concurrency": j.limit_key_concurrency,
            "rate_count": j.rate_count,
            "rate_period": j.rate_period,
            "meta": j.meta,
        }
        for j in jobs
    ]
    if any(j.flow_id is not None for j in jobs):
        # The core never mixes unique jobs into a flow (backburner.flows).
        for j, row in zip(jobs, rows, strict=True):
            row.update(
                flow_id=j.flow_id, waiting_on=len(j.depends_on), receives=j.receives,
                depends_on=codec.dumps(list(j.depends_on)) if j.depends_on else None,
                dependents=codec.dumps(list(j.dependents)) if j.dependents else None,
                waiting_run_at=WAITING_RUN_AT,
            )
        with WriteTransaction(conn):
            conn.executemany(Q["insert_flow_job"], rows)
        return [Inserted(j.id) for j in jobs]
    if all(j.unique_key is None for j in jobs):
        with WriteTransaction(conn):
            if any(_has_limits(j) for j in jobs):
                conn.executemany(Q["insert_limited_job"], rows)
            else:
                conn.executemany(Q["insert_job"], rows)
        return [Inserted(j.id) for j in jobs]
    used: list[Inserted] = []
    # BEGIN IMMEDIATE: no other writer between the look-up and the insert; the unique
    # index would refuse a second holder anyway.
    with WriteTransaction(conn):
        for j, row in zip(jobs, rows, strict=True):
            if j.unique_key is not None:
                conn.execute(Q["release_lapsed_key"], row)
                holder = conn.execute(Q["unique_holder"], row).fetchone()
                if holder is not None:
                    used.append(Inserted(str(holder["id"]), JobState(holder["state"])))
                    continue
            conn.execute(Q["insert_limited_job" if _has_limits(j) else "insert_unique_job"], row)
            used.append(Inserted(j.id))
    return used


def _has_limits(j: NewJob) -> bool:
    return (j.limit_concurrency, j.limit_key_concurrency, j.rate_count) != (None, None, None)


ClaimedRow = dict[str, Any]
"""A row of claim_from_queue / claim_suspect's RETURNING, by column name."""


def _claim(
    conn: sqlite3.Connection,
    worker_id: str,
    queues: list[str],
    limit: int,
    lease: float,
    alone: bool,
) -> Claim:
    now = time.time()
    claimed: list[tuple[int, int, int, ClaimedJob]] = []
    next_run_at = None
    suspects = False
    with WriteTransaction(conn):
        conn.execute(Q["stage_due"], {"now": now})
        base = {"worker_id": worker_id, "lease": lease, "now": now}
        if alone:
            for queue in queues:
                # A suspect over its limit is parked by _admit; the next one is tried.
                while row := conn.execute(Q["claim_suspect"], {**base, "queue": queue}).fetchone():
                    if admitted := _admit(conn, _refuse_invalid(conn, [row], now), now):
                        return Claim([_claimed(admitted[0])], now, None, False)
        for position, queue in enumerate(queues):
            while (wanted := limit - len(claimed)) > 0:
                params = {**base, "queue": queue, "limit": wanted}
                rows = conn.execute(Q["claim_from_queue"], params).fetchall()
                for r in _admit(conn, _refuse_invalid(conn, rows, now), now):
                    claimed.append((position, -r["priority"], r["seq"], _claimed(r)))
                # Fewer than asked: the queue has no more ready jobs. Otherwise jobs over
                # their limits were put back out of the way, and the ones behind them count.
                if len(rows) < wanted:
                    break
        if len(claimed) < limit:
            next_run_at = conn.execute(Q["next_run_at"]).fetchone()[0]
        suspects = any(
            conn.execute(Q["suspect_waiting"], {"queue": q}).fetchone() for q in queues
        )
    # RETURNING gives no order guarantee; restore queue order, priority, then FIFO.
    claimed.sort(key=lambda item: item[:3])
    return Claim([item[3] for item in claimed], now, next_run_at, suspects)


def _refuse_invalid(
    conn: sqlite3.Connection, rows: list[sqlite3.Row], now: float
) -> list[ClaimedRow]:
    """The claimed rows a worker can run, by column name. A row written by something other
    than Backburner with fields of the wrong type (`priority='high'`, `max_attempts='abc'`:
    SQLite stores whatever it is given) fails here, in the claim's transaction, with
    `invalid_payload`, before it is counted against any limit: a worker never sees it (R20)."""
    kept = []
    for row in rows:
        # A dict once per row: sqlite3.Row looks a name up by a scan of its columns.
        r = dict(zip(row.keys(), row, strict=True))
        problems = claim_problems(r)
        if not problems:
            kept.append(r)
            continue
        attempt = r["attempt"]
        conn.execute(Q["fail"], {
            "id": r["id"], "attempt": attempt, "retry_in": None, "final_state": "failed",
            "reason": FailureReason.INVALID_PAYLOAD.value, "counts": 1,
            "error": codec.dumps(invalid_row_error(problems, attempt, now)), "now": now,
        })
        if r["has_dependents"]:  # they never run
            _cancel_dependents(conn, r["id"], "failed", now)
    return kept


def _limited_job(conn: sqlite3.Connection, r: ClaimedRow) -> LimitedJob | None:
    """A claimed row as the limit rules read it; None for a job without limits. The claim
    returns only whether a job has limits: they are read for those that do."""
    if not r["has_limits"]:
        return None
    limits = conn.execute(Q["limits_of_claimed"], {"seq": r["seq"]}).fetchone()
    return LimitedJob(
        id=r["id"], queue=r["queue"], task=r["task"], priority=r["priority"], order=r["seq"],
        limit_concurrency=limits["limit_concurrency"], limit_key=limits["limit_key"],
        limit_key_concurrency=limits["limit_key_concurrency"],
        rate_count=limits["rate_count"], rate_period=limits["rate_period"],
    )


def _admit(conn: sqlite3.Connection, rows: list[ClaimedRow], now: float) -> list[ClaimedRow]:
    """The claimed rows that may run under their limits (backends/limit_rules.py decides).
    The claim is already written, so the store counts them among the running. Costs
    nothing when no row has limits."""
    if not any(r["has_limits"] for r in rows):
        return rows
    limited = [job for r in rows if (job := _limited_job(conn, r)) is not None]
    if not limited:
        return rows
    running = {
        group: conn.execute(
            Q["running_in_task" if group[0] == "task" else "running_in_key"],
            {"queue": group[1], "task": group[2], "key": group[3]},
        ).fetchone()[0]
        for group in groups_of(limited)
    }
    starts: dict[tuple[str, str], list[float]] = {}
    for queue, task, period in rate_windows(limited):
        params = {"queue": queue, "task": task, "since": now - period}
        conn.execute(Q["trim_rate_window"], params)
        starts[(queue, task)] = [s[0] for s in conn.execute(Q["rate_starts"], params)]
    admission = plan_admission(limited, running, starts, now)
    seq = {r["id"]: r["seq"] for r in rows}
    for job_id, kind in admission.parked:
        conn.execute(Q["park"], {"seq": seq[job_id], "parked": PARKED_ON[kind]})
    for job_id, run_at in admission.delayed:
        conn.execute(Q["delay_for_rate"], {"seq": seq[job_id], "run_at": run_at})
    for (queue, task), n in admission.starts.items():
        for _ in range(n):
            conn.execute(Q["record_start"], {"queue": queue, "task": task, "now": now})
    refused = admission.refused
    return [r for r in rows if r["id"] not in refused]


def _free_slots(conn: sqlite3.Connection, stopped: Sequence[LimitedJob]) -> set[str]:
    """Jobs that stopped running hand their slots to the next parked jobs of their groups;
    returns the queues to wake. Nothing is read or written for jobs without concurrency
    limits."""
    woken: set[str] = set()
    for (kind, queue, task, key), n in slots_freed(stopped).items():
        params = {"queue": queue, "task": task, "key": key, "n": n}
        query = Q["unpark_task"] if kind == "task" else Q["unpark_key"]
        woken.update(r[0] for r in conn.execute(query, params))
    return woken


def _claimed(r: ClaimedRow) -> ClaimedJob:
    return ClaimedJob(
        id=r["id"], task=r["task"], queue=r["queue"], priority=r["priority"], args=r["args"],
        kwargs=r["kwargs"], attempt=r["attempt"], max_attempts=r["max_attempts"],
        failures=r["failures"], lost=r["lost"], timeout=r["timeout"],
        created_at=r["created_at"], run_at=r["run_at"], started_at=r["started_at"],
        has_dependents=bool(r["has_dependents"]), meta=r["meta"],
        has_limits=bool(r["has_limits"]),
    )


def _heartbeat(conn: sqlite3.Connection, worker_id: str, lease: float) -> Heartbeat:
    now = time.time()
    params = {"worker_id": worker_id, "lease": lease, "now": now}
    with WriteTransaction(conn):
        rows = conn.execute(Q["heartbeat"], params).fetchall()
        conn.execute(Q["heartbeat_worker"], params)
    return Heartbeat(
        owned={r["id"]: r["attempt"] for r in rows},
        cancel_requested=frozenset(r["id"] for r in rows if r["cancel_requested"]),
    )


def _update_progress(conn: sqlite3.Connection, job_id: str, attempt: int, progress: str) -> bool:
    params = {"id": job_id, "attempt": attempt, "progress": progress, "now": time.time()}
    with WriteTransaction(conn):
        return conn.execute(Q["update_progress"], params).rowcount == 1


Outcome = tuple[list[bool], set[str]]
"""Per item whether it was accepted, and the queues whose parked jobs got a slot."""


def _complete(conn: sqlite3.Connection, items: Sequence[Completion]) -> Outcome:
    now = time.time()
    params = [{"id": i.id, "attempt": i.attempt, "result": i.result, "now": now} for i in items]
    with WriteTransaction(conn):
        accepted = _each_updated(conn, Q["complete"], params)
        for i, ok in zip(items, accepted, strict=True):
            if ok and i.has_dependents:
                _release_dependents(conn, i.id, now)
        return accepted, _free_slots_of(conn, items, accepted)


def _each_updated(
    conn: sqlite3.Connection, statement: str, params: list[dict[str, Any]]
) -> list[bool]:
    """Per item of `params`, whether `statement` (an UPDATE of at most one row) changed its
    row. A batch's usual case, every one did, is one executemany (~15% less than one
    execute per item); when some did not, it is undone and run item by item, in order, to
    say which: the same writes and answers as the item-by-item loop alone."""
    conn.execute("SAVEPOINT each_updated")
    if conn.executemany(statement, params).rowcount == len(params):
        conn.execute("RELEASE each_updated")
        return [True] * len(params)
    conn.execute("ROLLBACK TO each_updated")
    conn.execute("RELEASE each_updated")
    return [conn.execute(statement, p).rowcount == 1 for p in params]


def _fail(conn: sqlite3.Connection, items: Sequence[Failure]) -> Outcome:
    now = time.time()
    statement = Q["fail"]
    accepted = []
    with WriteTransaction(conn):
        for i in items:
            final = ended_state(i.reason).value
            params = {
                "id": i.id,
                "attempt": i.attempt,
                "retry_in": i.retry_in,
                "final_state": final,
                "reason": i.reason.value,
                "counts": 1 if i.counts else 0,
                "error": codec.dumps(error_entry(i.error, i.attempt, i.reason, now)),
                "now": now,
            }
            ok = conn.execute(statement, params).rowcount == 1
            accepted.append(ok)
            if ok and i.has_dependents and i.retry_in is None:
                _cancel_dependents(conn, i.id, final, now)
        return accepted, _free_slots_of(conn, items, accepted)


def _release(conn: sqlite3.Connection, items: Sequence[Release]) -> Outcome:
    now = time.time()
    statement = Q["release"]
    with WriteTransaction(conn):
        accepted = [
            conn.execute(statement, {"id": i.id, "attempt": i.attempt, "now": now}).rowcount
            == 1
            for i in items
        ]
        return accepted, _free_slots_of(conn, items, accepted)


def _free_slots_of(
    conn: sqlite3.Connection,
    items: Sequence[Completion | Failure | Release],
    accepted: list[bool],
) -> set[str]:
    """The concurrency slots the accepted acknowledgements hand on (one read per batch: no
    state ties a claim to its acknowledgement, so a give-back of a stray claim frees its
    slots like any other); returns the queues to wake."""
    # A worker hands back what the claim said (has_limits): only the jobs not known to be
    # ordinary are looked at; an acknowledgement made by hand, or a give-back, says nothing.
    ended = [
        i.id for i, ok in zip(items, accepted, strict=True)
        if ok and getattr(i, "has_limits", None) is not False
    ]
    if not ended:
        return set()
    found = conn.execute(Q["limited_of"], {"ids": codec.dumps(ended)}).fetchall()
    return _free_slots(conn, [_stopped_job(r["id"], r) for r in found]) if found else set()


def _stopped_job(job_id: str, r: sqlite3.Row) -> LimitedJob:
    return LimitedJob(
        id=job_id, queue=r["queue"], task=r["task"], limit_concurrency=r["limit_concurrency"],
        limit_key=r["limit_key"], limit_key_concurrency=r["limit_key_concurrency"],
    )


def _cancel(conn: sqlite3.Connection, job_id: str) -> JobState | None:
    now = time.time()
    params = {"id": job_id, "now": now}
    with WriteTransaction(conn):
        cancelled = conn.execute(Q["cancel_waiting"], params).fetchone()
        if cancelled is not None:
            if cancelled["dependents"] is not None:
                _cancel_dependents(conn, job_id, "cancelled", now)
            return JobState.CANCELLED
        conn.execute(Q["request_cancel"], params)
        row = conn.execute(Q["state_of"], params).fetchone()
    return JobState(row[0]) if row else None


def _retry(conn: sqlite3.Connection, job_id: str) -> JobState | None:
    now = time.time()
    params = {"id": job_id, "now": now}
    with WriteTransaction(conn):
        retried = conn.execute(Q["retry"], params).fetchone()
        if retried is not None:
            if retried["dependents"] is not None:
                _rearm_dependents(conn, job_id, now)
            return JobState.PENDING
        row = conn.execute(Q["state_of"], params).fetchone()
    return JobState(row[0]) if row else None


def _delete(conn: sqlite3.Connection, job_id: str) -> bool:
    with WriteTransaction(conn):
        deleted = conn.execute(Q["delete"], {"id": job_id}).fetchone()
        if deleted is not None and deleted["dependents"] is not None and deleted["state"] in (
            "pending", "scheduled"
        ):
            # What waits for a job that never ran would wait for ever.
            _cancel_dependents(
                conn, job_id, "deleted", time.time(), id_list(deleted["dependents"])
            )
    return deleted is not None


def _rescue_expired(
    conn: sqlite3.Connection, max_lost: int
) -> tuple[list[Transition], set[str]]:
    now = time.time()
    with WriteTransaction(conn):
        rows = conn.execute(Q["rescue_expired"], {"now": now, "max_lost": max_lost}).fetchall()
        for r in rows:
            if r["dependents"] is not None and r["state"] in ("failed", "cancelled"):
                _cancel_dependents(conn, r["id"], r["state"], now)
        # A dead worker's slots are returned with its jobs: none is leaked.
        woken = _free_slots(conn, [_stopped_job(r["id"], r) for r in rows])
        # Workers that stopped heartbeating long ago are gone; keep the table small.
        conn.execute(Q["forget_dead_workers"], {"before": now - 3600})
    return [
        Transition(
            id=r["id"], task=r["task"], queue=r["queue"], state=JobState(r["state"]),
            attempt=r["attempt"], reason=FailureReason(r["reason"]) if r["reason"] else None,
        )
        for r in rows
    ], woken


# Chains and groups: backburner.backends.flow_rules decides, inside the transaction of the
# transition that completed, ended or retried the job the others follow, so no step is lost or
# run twice; these read what a rule asks for and apply what it returns.


def _release_dependents(conn: sqlite3.Connection, job_id: str, now: float) -> None:
    _apply_flow(conn, plan_release(job_id), now)


def _cancel_dependents(
    conn: sqlite3.Connection, job_id: str, state: str, now: float,
    dependents: tuple[str, ...] | None = None,
) -> None:
    _apply_flow(conn, plan_cancel(job_id, state, dependents), now)


def _rearm_dependents(conn: sqlite3.Connection, job_id: str, now: float) -> None:
    _apply_flow(conn, plan_rearm(job_id), now)


def _flow_nodes(conn: sqlite3.Connection, wanted: Read) -> dict[str, FlowNode]:
    # The write transaction already excludes every other writer: nothing to lock.
    found = {}
    for r in conn.execute(Q["flow_nodes"], {"ids": codec.dumps(list(wanted.ids))}):
        node = _flow_node(r)
        if node is not None:
            found[node.id] = node
    return found


def _flow_node(r: sqlite3.Row) -> FlowNode | None:
    """A row as the flow rules read it; None (as if deleted) for a row something other than
    Backburner wrote with a state or a count the rules cannot read (R20)."""
    try:
        state, waiting_on = JobState(r["state"]), int(r["waiting_on"])
    except (TypeError, ValueError):
        return None
    receives = r["receives"] if r["receives"] in ("result", "results") else None
    return FlowNode(
        id=r["id"], state=state, reason=r["reason"], waiting_on=waiting_on,
        depends_on=id_list(r["depends_on"]), dependents=id_list(r["dependents"]),
        receives=receives, args=r["args"], result=r["result"],
    )


def _apply_flow(conn: sqlite3.Connection, plan: Plan, now: float) -> None:
    for change in drive(plan, lambda wanted: _flow_nodes(conn, wanted)):
        params: dict[str, Any] = {"id": change.id, "now": now}
        if isinstance(change, WaitLess):
            conn.execute(Q["flow_wait"], {**params, "waiting_on": change.waiting_on})
        elif isinstance(change, MakeReady):
            conn.execute(Q["flow_ready"], {**params, "args": change.args})
        elif isinstance(change, CancelWaiting):
            error = codec.dumps(dependency_error(change.after, change.how, now))
            conn.execute(Q["flow_cancel"], {**params, "error": error})
        else:
            conn.execute(Q["flow_rearm"], {
                **params, "waiting_on": change.waiting_on, "waiting_run_at": WAITING_RUN_AT,
            })


def _prune_window(
    conn: sqlite3.Connection, ages: dict[JobState, float], limit: int, start: int
) -> tuple[int, int]:
    """One window of the pruner: (jobs deleted, where the next window starts; 0 once the
    walk reached the jobs created after the cutoff)."""
    now = time.time()
    params: dict[str, Any] = {
        f"before_{s.value}": now - ages[s] if s in ages else None for s in TERMINAL_STATES
    }
    # Read before the write transaction: a handful of primary-key probes.
    upto = _first_created_at_or_after(conn, now - min(ages.values()))
    with WriteTransaction(conn):
        end = conn.execute(
            Q["prune_window_end"], {"start": start, "upto": upto, "window": PRUNE_WINDOW}
        ).fetchone()[0]
        if end is None:
            return 0, 0
        params.update(start=start, end=end, limit=limit, now=now)
        deleted = [r[0] for r in conn.execute(Q["prune"], params)]
    if len(deleted) >= limit:
        return len(deleted), max(deleted) + 1  # the rest of this window comes next
    return len(deleted), end + 1 if end + 1 < upto else 0


def _first_created_at_or_after(conn: sqlite3.Connection, cutoff: float) -> int:
    """The rowid of the first job created at or after `cutoff`, by binary search on the
    rowid: rows are inserted in time order (up to the wait for the write lock, which only
    leaves a job for a later walk)."""
    low, high = conn.execute(Q["seq_bounds"]).fetchone()
    if low is None:
        return 0
    high += 1
    while low < high:
        row = conn.execute(Q["job_at_or_after"], {"seq": (low + high) // 2}).fetchone()
        if row is not None and row["created_at"] < cutoff:
            low = row["seq"] + 1
        else:
            high = (low + high) // 2
    return int(low)


def _get(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(Q["get"], {"id": job_id}).fetchone()
    return record_from_row(row) if row else None


def _list_jobs(
    conn: sqlite3.Connection, filter: JobFilter, limit: int, cursor: str | None
) -> JobPage:
    walked, params = _walked(filter)
    below = seq_cursor(cursor)
    if below is not None:
        params["cursor"] = below
        walked.append("seq < :cursor")
    where = f"WHERE {' AND '.join(walked)}" if walked else ""
    params["limit"] = limit + 1
    if not filter.scans:
        rows = conn.execute(
            f"SELECT * FROM backburner_jobs {where} ORDER BY seq DESC LIMIT :limit", params
        ).fetchall()
    else:
        # The scanned predicates are checked on a bounded window of the walked rows.
        params["window"] = records.SCAN_WINDOW
        scanned = _scanned(filter, params)
        window = f"SELECT * FROM backburner_jobs {where} ORDER BY seq DESC LIMIT :window"
        rows = conn.execute(
            f"SELECT * FROM ({window}) WHERE {scanned} ORDER BY seq DESC LIMIT :limit", params
        ).fetchall()
        if len(rows) <= limit:
            read, last = conn.execute(
                f"SELECT count(*), min(seq) FROM (SELECT seq FROM backburner_jobs {where} "
                "ORDER BY seq DESC LIMIT :window)", params,
            ).fetchone()
            if read == records.SCAN_WINDOW:  # the window was full: more may lie below
                return JobPage([record_from_row(r) for r in rows], str(last))
    more = len(rows) > limit
    rows = rows[:limit]
    return JobPage(
        [record_from_row(r) for r in rows],
        str(rows[-1]["seq"]) if more and rows else None,
    )


def _count_jobs(conn: sqlite3.Connection, filter: JobFilter) -> int:
    walked, params = _walked(filter)
    if filter.scans:
        walked.append(_scanned(filter, params))
    where = f"WHERE {' AND '.join(walked)}" if walked else ""
    count: int = conn.execute(f"SELECT count(*) FROM backburner_jobs {where}", params).fetchone()[0]
    return count


def _walked(filter: JobFilter) -> tuple[list[str], dict[str, Any]]:
    """The filter's states, task and queue as SQL (what a listing walks)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if filter.states:
        # Literals, not parameters: SQLite uses a partial index (backburner_jobs_failed...)
        # only when the query names its predicate's value. JobState values are a closed set.
        values = sorted({JobState(state).value for state in filter.states})
        if len(values) == 1:
            clauses.append(f"state = '{values[0]}'")
        else:
            quoted = ", ".join("'" + v + "'" for v in values)
            clauses.append(f"state IN ({quoted})")
    if filter.task is not None:
        clauses.append("task = :task")
        params["task"] = filter.task
    if filter.queue is not None:
        clauses.append("queue = :queue")
        params["queue"] = filter.queue
    return clauses, params


def _scanned(filter: JobFilter, params: dict[str, Any]) -> str:
    """The filter's job-by-job predicates (search, creation time) as one SQL condition."""
    clauses = ["1"]
    if filter.created_after is not None:
        clauses.append("created_at >= :created_after")
        params["created_after"] = filter.created_after
    if filter.created_before is not None:
        clauses.append("created_at < :created_before")
        params["created_before"] = filter.created_before
    if filter.search:
        params["search"] = filter.search.lower()
        clauses.append(Q["search"])
    return " AND ".join(clauses)


def _counts(conn: sqlite3.Connection) -> dict[tuple[str, JobState], int]:
    return {(r["queue"], JobState(r["state"])): r["n"] for r in conn.execute(Q["counts"])}


def _oldest_pending(conn: sqlite3.Connection) -> dict[str, float]:
    now = time.time()
    queues = [r["queue"] for r in conn.execute(Q["counts"]) if r["state"] == "pending"]
    ages = {}
    for queue in queues:
        run_at = conn.execute(Q["oldest_ready"], {"queue": queue}).fetchone()["run_at"]
        if run_at is not None:
            ages[queue] = max(0.0, now - run_at)
    return ages


def _lead(conn: sqlite3.Connection, worker_id: str, ttl: float) -> bool:
    now = time.time()
    with WriteTransaction(conn):
        conn.execute(Q["lead"], {"worker_id": worker_id, "until": now + ttl, "now": now})
        row = conn.execute(Q["leader"]).fetchone()
    return row is not None and row[0] == worker_id


def _resign(conn: sqlite3.Connection, worker_id: str) -> None:
    with WriteTransaction(conn):
        conn.execute(Q["resign"], {"worker_id": worker_id})


def _schedule_states(conn: sqlite3.Connection) -> dict[str, ScheduleState]:
    return {
        r["name"]: ScheduleState(bool(r["paused"]), r["changed_at"])
        for r in conn.execute(Q["schedule_states"])
    }


def _set_schedule_paused(conn: sqlite3.Connection, name: str, paused: bool) -> None:
    params = {"name": name, "paused": int(paused), "now": time.time()}
    with WriteTransaction(conn):
        conn.execute(Q["set_schedule_paused"], params)


def _queue_states(conn: sqlite3.Connection) -> dict[str, QueueState]:
    return {
        r["name"]: QueueState(bool(r["paused"]), r["changed_at"])
        for r in conn.execute(Q["queue_states"])
    }


def _set_queue_paused(conn: sqlite3.Connection, queue: str, paused: bool) -> None:
    params = {"name": queue, "paused": int(paused), "now": time.time()}
    with WriteTransaction(conn):
        conn.execute(Q["set_queue_paused"], params)


def _register_worker(conn: sqlite3.Connection, info: WorkerInfo) -> None:
    params = {
        "id": info.id,
        "hostname": info.hostname,
        "pid": info.pid,
        "queues": codec.dumps(list(info.queues)),
        "concurrency": info.concurrency,
        "now": time.time(),
        "extra": codec.dumps(info.extra),
    }
    with WriteTransaction(conn):
        conn.execute(Q["register_worker"], params)


def _deregister_worker(conn: sqlite3.Connection, worker_id: str) -> None:
    with WriteTransaction(conn):
        conn.execute(Q["deregister_worker"], {"id": worker_id})


def _list_workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    return [
        WorkerInfo(
            id=r["id"], hostname=r["hostname"], pid=r["pid"],
            queues=tuple(codec.loads(r["queues"])), concurrency=r["concurrency"],
            started_at=r["started_at"], heartbeat_at=r["heartbeat_at"],
            extra=codec.loads(r["extra"]),
        )
        for r in conn.execute(Q["list_workers"])
    ]
