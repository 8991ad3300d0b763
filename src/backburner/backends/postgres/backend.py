"""The PostgreSQL backend: jobs of many machines in one database, one schema per app.

Every transition is one statement of queries.sql (one round trip, one transaction), run on
a pooled asyncpg connection and prepared once per connection. Batch claims take rows with
`FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait for each other nor share a job;
every write of an attempt is fenced by its attempt number; every time is the server's.
Wake-ups are NOTIFYs sent by the statements themselves (see notifier.py). No asyncpg
exception leaves the backend: see errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from backburner import codec
from backburner.backends import records
from backburner.backends.attempt_rules import ended_state
from backburner.backends.flow_rules import (
    CancelWaiting,
    FlowNode,
    MakeReady,
    Plan,
    Read,
    Rearm,
    WaitLess,
    dependency_error,
    drive_async,
    plan_cancel,
    plan_rearm,
    plan_release,
)
from backburner.backends.limit_rules import (
    PARKED_ON,
    Group,
    LimitedJob,
    groups_of,
    plan_admission,
    rate_windows,
    slots_freed,
)
from backburner.backends.outage import OutageLog
from backburner.backends.postgres import connections, errors, external, schema
from backburner.backends.postgres.config import PostgresConfig, parse_url
from backburner.backends.postgres.notifier import PostgresNotifier
from backburner.backends.postgres.text_escape import escape_error, unescape_errors
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
    error_entry,
    record_from_row,
    seq_cursor,
)
from backburner.backends.sql_files import load_queries
from backburner.backends.translation import translating
from backburner.errors import ConfigurationError
from backburner.job import WAITING_RUN_AT, FailureReason, JobRecord, JobState
from backburner.notify import Event, Notifier

QUERIES = load_queries("backburner.backends.postgres")
CLOSE_TIMEOUT = 5.0
"""Seconds `close()` waits for statements in flight before it drops the connections."""

def _watch(backend: PostgresBackend, outcome: BaseException | None) -> None:
    backend.outage.observe(outcome)


translated = translating(errors.TRANSLATED, errors.translate, _watch)
"""No asyncpg exception leaves the backend: see errors.py."""

_UNIQUE_ROUNDS = 10
# retry() or a claim putting a job back (limits) racing an insert of its unique key: a
# second round always sees the committed holder; a third only if a new race began meanwhile.
_RETRY_ROUNDS = 3


def _columns(jobs: Sequence[NewJob]) -> tuple[list[Any], ...]:
    """The arrays insert_jobs and insert_unique_jobs unnest, in their parameter order."""
    return (
        [j.id for j in jobs], [j.task for j in jobs], [j.queue for j in jobs],
        [j.priority for j in jobs], [j.args for j in jobs], [j.kwargs for j in jobs],
        [j.max_attempts for j in jobs], [j.timeout for j in jobs],
        [float(j.delay) for j in jobs], [j.run_at for j in jobs],
    )


def _flow_columns(jobs: Sequence[NewJob]) -> tuple[list[Any], ...]:
    """The link arrays insert_flow_jobs unnests after `_columns`."""
    return (
        [j.flow_id for j in jobs],
        [codec.dumps(list(j.depends_on)) if j.depends_on else None for j in jobs],
        [codec.dumps(list(j.dependents)) if j.dependents else None for j in jobs],
        [len(j.depends_on) for j in jobs],
        [j.receives for j in jobs],
    )


def _limits_and_meta(jobs: Sequence[NewJob]) -> tuple[list[Any], ...]:
    """The limit arrays of the insert queries, then the meta array (their last parameters)."""
    return (
        [j.limit_concurrency for j in jobs], [j.limit_key for j in jobs],
        [j.limit_key_concurrency for j in jobs], [j.rate_count for j in jobs],
        [j.rate_period for j in jobs], [j.meta for j in jobs],
    )


def _stored(jobs: Sequence[NewJob], used: Sequence[Inserted]) -> list[str]:
    """The ids of the jobs an insert stored (not those whose key a live job holds)."""
    return [j.id for j, u in zip(jobs, used, strict=True) if u.id == j.id]


ENQUEUED_STATES = ("pending", "scheduled")
"""The states a new job's event names: the insert statement picks one, by the server's clock."""


_CLAIM_ROUNDS = 8
"""Most claim statements one claim runs when jobs over their limits keep being put back;
past that it returns what it has and says more may be ready (next_run_at = now)."""


class PostgresBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.config: PostgresConfig = parse_url(url)
        # Every query names its tables `{schema}.x`: rendered once, so each has one fixed
        # text per backend and asyncpg's per-connection statement cache finds it.
        self._q = {
            name: schema.render(sql, self.config.quoted_schema) for name, sql in QUERIES.items()
        }
        self._pool: Any = None
        self._opened_in: int | None = None
        self._inherited: list[Any] = []
        self._open_lock = asyncio.Lock()
        self._notifier = PostgresNotifier(self.config, lambda: self._pool, self._q["notify"])
        self._wakeup = self.config.channel("wakeup")
        self.outage = OutageLog(f"PostgreSQL (schema {self.config.schema})")

    def __repr__(self) -> str:
        return f"<PostgresBackend schema={self.config.schema!r}>"

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    # -- lifecycle -------------------------------------------------------------------------
    @translated
    async def open(self, *, create: bool = True) -> None:
        async with self._open_lock:
            if self._pool is not None and self._opened_in == os.getpid():
                return
            if self._pool is not None:
                # Made before a fork: its sockets are the parent's. Never use it, never close
                # it (a goodbye on them would end the parent's sessions); keep it referenced
                # so collecting it cannot touch them either.
                self._inherited.append(self._pool)
                self._pool = None
            pool = await connections.create_pool(self.config)
            try:
                async with pool.acquire() as conn:
                    if not create:
                        await schema.check_exists(conn, self.config.schema,
                                                  self.config.quoted_schema)
                    await schema.migrate(conn, self.config.schema, self.config.quoted_schema)
            except BaseException:
                pool.terminate()
                raise
            self._pool, self._opened_in = pool, os.getpid()

    def for_another_loop(self) -> PostgresBackend:
        return type(self)(self.url)

    async def close(self) -> None:
        await self._notifier.close()
        pool, self._pool = self._pool, None
        if pool is not None and self._opened_in != os.getpid():
            self._inherited.append(pool)  # a parent's pool (see open)
            pool = None
        self._opened_in = None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
            except errors.TRANSLATED:  # TimeoutError among them
                pool.terminate()

    @translated
    async def migrate(self) -> list[int]:
        """Apply pending migrations (`backburner migrate`); works on a closed backend too."""
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                return await schema.migrate(conn, self.config.schema, self.config.quoted_schema)
        conn = await connections.connect(self.config, "migrate")
        try:
            return await schema.migrate(conn, self.config.schema, self.config.quoted_schema)
        finally:
            await conn.close()

    @translated
    async def destroy(self) -> None:
        """Drop this backend's schema with every job in it (tests; decommissioning)."""
        pool = await self._connected()
        await pool.execute(f"DROP SCHEMA IF EXISTS {self.config.quoted_schema} CASCADE")
        # Prepared statements name the dropped tables: start over with fresh connections.
        await pool.expire_connections()

    async def _connected(self) -> Any:
        if self._pool is None or self._opened_in != os.getpid():
            await self.open()
        return self._pool

    # -- transitions -----------------------------------------------------------------------
    @translated
    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        if not jobs:
            return []
        # The statements send the jobs' events too (queries.sql, insert_jobs), in this
        # process's name, also inside the application's transaction (connection=): there
        # they go out at its commit, as they should, and the publish() that follows the
        # insert (instrument.py) delivers them in this process only.
        events = self._notifier.statement_events((j.queue, j.id, j.task) for j in jobs)
        try:
            if any(j.flow_id is not None for j in jobs):
                # A flow's jobs (backburner.flows; never unique ones): one statement.
                target = (
                    await self._connected() if connection is None
                    else await external.driver_connection(connection)
                )
                await target.execute(
                    self._q["insert_flow_jobs"], *_columns(jobs), *_flow_columns(jobs),
                    WAITING_RUN_AT, self._wakeup,
                    self._notifier.origin if connection is None else "",
                    *_limits_and_meta(jobs), *events,
                )
                used = [Inserted(j.id) for j in jobs]
            elif connection is None:
                pool = await self._connected()
                if all(j.unique_key is None for j in jobs):
                    await pool.execute(
                        self._q["insert_jobs"], *_columns(jobs), self._wakeup,
                        self._notifier.origin, *_limits_and_meta(jobs), *events,
                    )
                    used = [Inserted(j.id) for j in jobs]
                else:
                    async with pool.acquire() as conn, conn.transaction():
                        used = await self._insert_unique(
                            conn, jobs, self._notifier.origin, events
                        )
            else:
                driver = await external.driver_connection(connection)
                # No origin for the wake-up: it reaches this process's workers too, at the
                # commit (the one the app publishes now comes before the job is visible to
                # them). The events keep it: this process delivers them at once, as before.
                if all(j.unique_key is None for j in jobs):
                    await driver.execute(
                        self._q["insert_jobs"], *_columns(jobs), self._wakeup, "",
                        *_limits_and_meta(jobs), *events,
                    )
                    used = [Inserted(j.id) for j in jobs]
                else:
                    # A savepoint, so a failure here leaves the application's transaction
                    # usable.
                    async with driver.transaction():
                        used = await self._insert_unique(driver, jobs, "", events)
        except errors.TRANSLATED as exc:
            if errors.is_unique_violation(exc):
                raise ConfigurationError(f"duplicate job id in {[j.id for j in jobs]}") from exc
            raise
        if events[0] is not None:
            self._notifier.sent_by_statement(
                (job_id, 0, ENQUEUED_STATES) for job_id in _stored(jobs, used)
            )
        return used

    async def _insert_unique(
        self, conn: Any, jobs: Sequence[NewJob], origin: str,
        events: tuple[str | None, str, int],
    ) -> list[Inserted]:
        """Insert what no live job holds the key of; answer the holders' ids for the rest.
        A holder may end between our skipped insert and the look-up: then that job is
        tried again (a few rounds; each round some insert or find a holder)."""
        keyed = [j for j in jobs if j.unique_key is not None]
        await conn.execute(
            self._q["lock_unique_keys"], [j.queue for j in keyed], [j.task for j in keyed],
            [j.unique_key for j in keyed], self.config.schema,
        )
        await conn.execute(
            self._q["release_lapsed_keys"], [j.queue for j in keyed], [j.task for j in keyed],
            [j.unique_key for j in keyed],
        )
        used: dict[str, Inserted] = {}
        waiting = list(jobs)
        for _ in range(_UNIQUE_ROUNDS):
            rows = await conn.fetch(
                self._q["insert_unique_jobs"], *_columns(waiting),
                [j.unique_key for j in waiting], [j.unique_scope.value for j in waiting],
                [j.unique_for for j in waiting], self._wakeup, origin,
                *_limits_and_meta(waiting), *events,
            )
            used.update((r["id"], Inserted(r["id"])) for r in rows)
            skipped = [j for j in waiting if j.id not in used]
            if not skipped:
                break
            holders = await conn.fetch(
                self._q["unique_holders"], [j.queue for j in skipped],
                [j.task for j in skipped], [j.unique_key for j in skipped],
            )
            found = {
                (r["queue"], r["task"], r["unique_key"]): Inserted(r["id"], JobState(r["state"]))
                for r in holders
            }
            waiting = []
            for j in skipped:
                holder = found.get((j.queue, j.task, j.unique_key))
                if holder is None:
                    waiting.append(j)
                else:
                    used[j.id] = holder
            if not waiting:
                break
        else:
            keys = [j.unique_key for j in waiting]
            raise ConfigurationError(f"unique keys kept changing hands during the insert: {keys}")
        return [used[j.id] for j in jobs]

    @translated
    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        alone: bool = False,
    ) -> Claim:
        pool = await self._connected()
        names = list(dict.fromkeys(queues))
        now, next_run_at, suspects, jobs = await self._claim(
            pool, worker_id, names, limit, lease, alone
        )
        if alone and jobs and jobs[0].lost:
            return Claim(jobs, now, None, False)
        if len(jobs) < limit and next_run_at is not None and next_run_at <= now:
            # Due scheduled jobs become pending in a statement of their own (one snapshot
            # cannot see rows that the same statement changed), then the claim goes on.
            await pool.execute(self._q["stage_due"])
            now, next_run_at, suspects, more = await self._claim(
                pool, worker_id, names, limit - len(jobs), lease, alone and not jobs
            )
            if alone and not jobs and more and more[0].lost:
                return Claim(more, now, None, False)
            jobs += more
        return Claim(jobs, now, next_run_at if len(jobs) < limit else None, suspects)

    async def _claim(
        self, pool: Any, worker_id: str, queues: list[str], limit: int, lease: float,
        alone: bool,
    ) -> tuple[float, float | None, bool, list[ClaimedJob]]:
        claimed: list[Any] = []
        delayed: float | None = None
        for _ in range(_CLAIM_ROUNDS):
            wanted = limit - len(claimed)
            rows = await pool.fetch(
                self._q["claim"], worker_id, queues, wanted, float(lease), alone and not claimed
            )
            meta = rows[0]
            got = [r for r in rows if r["id"] is not None]
            if any(_limited(r) for r in got):
                # Jobs over their limits are put back out of the claim's way (parked or
                # delayed); the jobs behind them are claimed by the next round.
                kept, until = await self._admit(pool, got, meta["now"])
                claimed += kept
                if until is not None:
                    delayed = until if delayed is None else min(delayed, until)
                # Another round if some were put back and more may wait behind them (a full
                # batch), or if a suspect was put back (ordinary jobs may run instead).
                if len(kept) < len(got) and (len(got) == wanted or got[0]["lost"]):
                    continue
            else:
                claimed += got
            break
        else:
            # Still jobs over their limits at the head: say more may be ready now.
            meta = {**dict(meta), "next_run_at": meta["now"]}
        if delayed is not None and (meta["next_run_at"] is None or delayed < meta["next_run_at"]):
            # Jobs just delayed by their rate: the worker's next claim is due then.
            meta = {**dict(meta), "next_run_at": delayed}
        claimed.sort(
            # RETURNING has no order: restore queue order, then priority, then FIFO.
            key=lambda r: (r["pos"], -r["priority"], r["seq"]),
        )
        jobs = [
            ClaimedJob(
                id=r["id"], task=r["task"], queue=r["queue"], priority=r["priority"],
                args=r["args"], kwargs=r["kwargs"], attempt=r["attempt"],
                max_attempts=r["max_attempts"], failures=r["failures"], lost=r["lost"],
                timeout=r["timeout"], created_at=r["created_at"], run_at=r["run_at"],
                started_at=r["started_at"], has_dependents=r["has_dependents"],
                meta=r["meta"],
            )
            for r in claimed
        ]
        return meta["now"], meta["next_run_at"], bool(meta["suspects_waiting"]), jobs

    async def _admit(
        self, pool: Any, rows: list[Any], now: float
    ) -> tuple[list[Any], float | None]:
        # A queued-scope job put back holds its key again, and jobs_unique refuses that once
        # an insert of its key still in flight commits: the next round sees that holder and
        # puts the job back without its key (queries.sql, park), so no violation leaks.
        for round_ in range(_RETRY_ROUNDS):
            try:
                return await self._admit_once(pool, rows, now)
            except errors.TRANSLATED as exc:
                if not errors.is_unique_violation(exc) or round_ == _RETRY_ROUNDS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _admit_once(
        self, pool: Any, rows: list[Any], now: float
    ) -> tuple[list[Any], float | None]:
        """The claimed rows that may run under their limits (backends/limit_rules.py
        decides). The claim has committed, so the store counts them among the running until
        this transaction puts back the ones over a limit. Runs only for limited rows."""
        limited = [_limited_job(r) for r in rows if _limited(r)]
        groups = groups_of(limited)
        windows = rate_windows(limited)
        async with pool.acquire() as conn, conn.transaction():
            await self._lock_limits(
                conn, [*groups, *(("rate", q, t, None) for q, t, _ in windows)]
            )
            counts = await conn.fetch(
                self._q["limit_counts"], [g[0] for g in groups], [g[1] for g in groups],
                [g[2] for g in groups], [g[3] for g in groups],
            )
            running = {groups[r["ord"] - 1]: r["running"] for r in counts}
            starts: dict[tuple[str, str], list[float]] = {}
            for queue, task, period in windows:
                await conn.execute(self._q["trim_rate_window"], queue, task, period)
                found = await conn.fetch(self._q["rate_starts"], queue, task)
                starts[(queue, task)] = [r["at"] for r in found]
            admission = plan_admission(limited, running, starts, now)
            if admission.parked:
                await conn.execute(
                    self._q["park"], [p[0] for p in admission.parked],
                    [PARKED_ON[p[1]] for p in admission.parked],
                )
            for (queue, task), n in admission.starts.items():
                await conn.execute(self._q["record_starts"], queue, task, n)
            late: dict[float, list[str]] = {}
            for job_id, run_at in admission.delayed:
                late.setdefault(run_at, []).append(job_id)
            for run_at, ids in late.items():
                await conn.execute(self._q["delay_for_rate"], ids, run_at)
        refused = admission.refused
        return [r for r in rows if r["id"] not in refused], admission.next_run_at

    async def _lock_limits(
        self, conn: Any, groups: Sequence[tuple[str, str, str, str | None]]
    ) -> None:
        await conn.execute(
            self._q["lock_limits"], [g[0] for g in groups], [g[1] for g in groups],
            [g[2] for g in groups], self.config.schema, [g[3] for g in groups],
        )

    async def _free_slots(self, rows: Sequence[Any]) -> None:
        """Jobs that stopped running hand their slots to the next parked jobs of their
        groups (a transaction of its own after theirs; only when they had limits)."""
        # Only jobs with concurrency limits are read into the rules: ordinary acknowledgements
        # (the hot path) build nothing.
        await self._unpark(slots_freed(
            _limited_job(r) for r in rows
            if r["limit_concurrency"] is not None or r["limit_key_concurrency"] is not None
        ))

    async def _unpark(self, freed: Mapping[Group, int]) -> None:
        if not freed:
            return
        pool = await self._connected()
        groups = sorted(freed, key=lambda g: (g[0], g[1], g[2], g[3] or ""))
        async with pool.acquire() as conn, conn.transaction():
            await self._lock_limits(conn, groups)
            woken = await conn.fetch(
                self._q["unpark"], [g[0] for g in groups], [g[1] for g in groups],
                [g[2] for g in groups], [g[3] for g in groups], [freed[g] for g in groups],
                self._wakeup, self._notifier.origin,
            )
        if woken:
            self._notifier.publish([Event("wakeup", r["queue"]) for r in woken])

    @translated
    async def heartbeat(self, worker_id: str, lease: float) -> Heartbeat:
        pool = await self._connected()
        rows = await pool.fetch(self._q["heartbeat"], worker_id, float(lease))
        return Heartbeat(
            owned={r["id"]: r["attempt"] for r in rows},
            cancel_requested=frozenset(r["id"] for r in rows if r["cancel_requested"]),
        )

    @translated
    async def update_progress(self, job_id: str, attempt: int, progress: str) -> bool:
        pool = await self._connected()
        return bool(await pool.fetchval(self._q["update_progress"], job_id, attempt, progress))

    @translated
    async def complete(self, items: Sequence[Completion]) -> list[bool]:
        if not items:
            return []
        pool = await self._connected()
        plain = [i for i in items if not i.has_dependents]
        rows = []
        if plain:
            rows = list(await pool.fetch(
                self._q["complete"], [i.id for i in plain], [i.attempt for i in plain],
                [i.result for i in plain],
            ))
        flow = [i for i in items if i.has_dependents]
        if flow:
            # Jobs others wait for: completed and their dependents released in one
            # transaction (ordinary jobs keep their one-statement path).
            async with pool.acquire() as conn, conn.transaction():
                done = await conn.fetch(
                    self._q["complete"], [i.id for i in flow], [i.attempt for i in flow],
                    [i.result for i in flow],
                )
                for r in done:
                    await self._release_dependents(conn, r["id"])
                rows += done
        await self._free_slots(rows)
        return _accepted(items, rows)

    @translated
    async def fail(self, items: Sequence[Failure]) -> list[bool]:
        if not items:
            return []
        pool = await self._connected()
        plain = [i for i in items if not i.has_dependents]
        rows = list(await self._fail(pool, plain)) if plain else []
        flow = [i for i in items if i.has_dependents]
        if flow:
            # Ended for good: the job and what waits for it, in one transaction.
            async with pool.acquire() as conn, conn.transaction():
                done = await self._fail(conn, flow)
                ended = {i.id: i for i in flow if i.retry_in is None}
                for r in done:
                    item = ended.get(r["id"])
                    if item is not None:
                        final = ended_state(item.reason).value
                        await self._cancel_dependents(conn, item.id, final, None)
                rows += done
        await self._free_slots(rows)
        return _accepted(items, rows)

    async def _fail(self, conn: Any, items: Sequence[Failure]) -> Any:
        return await conn.fetch(
            self._q["fail"],
            [i.id for i in items],
            [i.attempt for i in items],
            [i.retry_in for i in items],
            [ended_state(i.reason).value for i in items],
            [i.reason.value for i in items],
            [1 if i.counts else 0 for i in items],
            # The time is stamped by the statement, with the server's clock.
            [codec.dumps(escape_error(error_entry(i.error, i.attempt, i.reason, 0.0)))
             for i in items],
            self._wakeup,
            self._notifier.origin,
        )

    @translated
    async def release(self, items: Sequence[Release]) -> list[bool]:
        if not items:
            return []
        pool = await self._connected()
        rows = await pool.fetch(
            self._q["release"], [i.id for i in items], [i.attempt for i in items],
            self._wakeup, self._notifier.origin,
        )
        await self._free_slots(rows)
        return _accepted(items, rows)

    @translated
    async def cancel(self, job_id: str) -> JobState | None:
        pool = await self._connected()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(self._q["cancel"], job_id)
            if row["dependents"] is not None:
                await self._cancel_dependents(conn, job_id, "cancelled", row["dependents"])
        return JobState(row["state"]) if row["state"] else None

    @translated
    async def retry(self, job_id: str) -> JobState | None:
        pool = await self._connected()
        # The statement gives the key up when another live job holds it, but under READ
        # COMMITTED it cannot see an insert of that key still in flight: jobs_unique then
        # refuses the update once that insert commits. The next round sees the holder and
        # retries the job without the key (see backburner.unique), so no violation leaks.
        for round_ in range(_RETRY_ROUNDS):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow(
                        self._q["retry"], job_id, self._wakeup, self._notifier.origin
                    )
                    if row["dependents"] is not None:
                        await self._rearm_dependents(conn, job_id)
                break
            except errors.TRANSLATED as exc:
                if not errors.is_unique_violation(exc) or round_ == _RETRY_ROUNDS - 1:
                    raise
        return JobState(row["state"]) if row["state"] else None

    @translated
    async def delete(self, job_id: str) -> bool:
        pool = await self._connected()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(self._q["delete"], job_id)
            if row is not None and row["dependents"] is not None and row["state"] in (
                "pending", "scheduled"
            ):
                # What waits for a job that never ran would wait for ever.
                await self._cancel_dependents(conn, job_id, "deleted", row["dependents"])
        return row is not None

    @translated
    async def rescue_expired(self, max_lost: int) -> list[Transition]:
        pool = await self._connected()
        # Housekeeping, not the hot path: one transaction, so a job the rescue ends cancels
        # what waits for it (backburner.flows) atomically.
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                self._q["rescue_expired"], max_lost, self._wakeup, self._notifier.origin
            )
            for r in rows:
                if r["dependents"] is not None and r["state"] in ("failed", "cancelled"):
                    await self._cancel_dependents(conn, r["id"], r["state"], r["dependents"])
        # A dead worker's slots come back with its jobs: none is leaked.
        await self._free_slots(rows)
        # And slots whose hand-over a dying process missed go to their parked jobs.
        stranded = await pool.fetch(self._q["stranded_limits"])
        # The counts' log (migration 9) is folded here too, not only when someone reads.
        await pool.execute(self._q["fold_counts"], self.config.schema)
        await self._unpark({(r["kind"], r["queue"], r["task"], r["key"]): r["n"] for r in stranded})
        return [
            Transition(
                r["id"], r["task"], r["queue"], JobState(r["state"]), r["attempt"],
                FailureReason(r["reason"]) if r["reason"] else None,
            )
            for r in rows
        ]

    # -- chains and groups: backburner.backends.flow_rules decides, inside the caller's ----
    # transaction; these read what a rule asks for and apply what it returns.
    async def _release_dependents(self, conn: Any, job_id: str) -> None:
        await self._apply_flow(conn, plan_release(job_id))

    async def _cancel_dependents(
        self, conn: Any, job_id: str, state: str, dependents: Sequence[str] | None
    ) -> None:
        await self._apply_flow(conn, plan_cancel(job_id, state, dependents))

    async def _rearm_dependents(self, conn: Any, job_id: str) -> None:
        await self._apply_flow(conn, plan_rearm(job_id))

    async def _apply_flow(self, conn: Any, plan: Plan) -> None:
        async def read(wanted: Read) -> dict[str, FlowNode]:
            query = self._q["flow_nodes_to_change" if wanted.to_change else "flow_nodes"]
            return {r["id"]: _flow_node(r) for r in await conn.fetch(query, list(wanted.ids))}

        changes = await drive_async(plan, read)
        waits = [c for c in changes if isinstance(c, WaitLess)]
        if waits:
            await conn.execute(
                self._q["flow_wait"], [c.id for c in waits], [c.waiting_on for c in waits]
            )
        ready = [c for c in changes if isinstance(c, MakeReady)]
        if ready:
            await conn.execute(
                self._q["flow_ready"], [c.id for c in ready], [c.args for c in ready],
                self._wakeup, self._notifier.origin,
            )
        cancelled = [c for c in changes if isinstance(c, CancelWaiting)]
        if cancelled:
            # Stamped by the statement, with the server's clock.
            errors = [dependency_error(c.after, c.how, 0.0) for c in cancelled]
            await conn.execute(
                self._q["flow_cancel"], [c.id for c in cancelled],
                [codec.dumps({k: v for k, v in e.items() if k != "at"}) for e in errors],
            )
        rearmed = [c for c in changes if isinstance(c, Rearm)]
        if rearmed:
            await conn.execute(
                self._q["flow_rearm"], [c.id for c in rearmed],
                [c.waiting_on for c in rearmed], WAITING_RUN_AT,
            )

    @translated
    async def prune(self, older_than: Mapping[JobState, float], limit: int) -> int:
        states = [s for s in TERMINAL_STATES if s in older_than]
        if not states or limit < 1:
            return 0
        pool = await self._connected()
        return int(await pool.fetchval(
            self._q["prune"], [s.value for s in states],
            [float(older_than[s]) for s in states], limit,
        ))

    # -- reads -----------------------------------------------------------------------------
    @translated
    async def get(self, job_id: str) -> JobRecord | None:
        pool = await self._connected()
        row = await pool.fetchrow(self._q["get"], job_id)
        return _record(row) if row is not None else None

    @translated
    async def list_jobs(
        self, filter: JobFilter, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        below = seq_cursor(cursor)
        states = [s.value for s in filter.states] if filter.states else None
        walked = (states, filter.task, filter.queue, below)
        async with self._planned() as conn:
            if not filter.scans:
                rows = await conn.fetch(self._q["list_jobs"], *walked, limit + 1)
            else:
                window = records.SCAN_WINDOW
                rows = await conn.fetch(
                    self._q["list_jobs_scan"], *walked, limit + 1, window,
                    filter.search.lower() if filter.search else None,
                    filter.created_after, filter.created_before,
                )
                if len(rows) <= limit:
                    read = await conn.fetchrow(self._q["list_jobs_window"], *walked, window)
                    if read is not None and read["n"] == window:  # full: more may lie below
                        return JobPage([_record(r) for r in rows], str(read["last"]))
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(
            [_record(r) for r in rows], str(rows[-1]["seq"]) if more and rows else None
        )

    @translated
    async def count_jobs(self, filter: JobFilter) -> int:
        states = [s.value for s in filter.states] if filter.states else None
        async with self._planned() as conn:
            count: int = await conn.fetchval(
                self._q["count_jobs"], states, filter.task, filter.queue,
                filter.search.lower() if filter.search else None,
                filter.created_after, filter.created_before,
            )
        return count

    @contextlib.asynccontextmanager
    async def _planned(self) -> AsyncIterator[Any]:
        """A connection in a read transaction whose statements are planned for their
        parameters (see the custom_plans query): for listings and counts only."""
        pool = await self._connected()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(self._q["custom_plans"])
            yield conn

    @translated
    async def counts(self) -> dict[tuple[str, JobState], int]:
        pool = await self._connected()
        # Kept by triggers (migration 9); folding first keeps the log short for this read.
        await pool.execute(self._q["fold_counts"], self.config.schema)
        rows = await pool.fetch(self._q["counts"])
        return {(r["queue"], JobState(r["state"])): r["n"] for r in rows}

    @translated
    async def oldest_pending(self) -> dict[str, float]:
        pool = await self._connected()
        rows = await pool.fetch(self._q["counts"])
        queues = [r["queue"] for r in rows if r["state"] == "pending"]
        ages = {}
        async with pool.acquire() as conn:
            for queue in queues:
                age = await conn.fetchval(self._q["oldest_ready"], queue)
                if age is not None:
                    ages[queue] = max(0.0, age)
        return ages

    # -- housekeeping leader ---------------------------------------------------------------
    @translated
    async def lead(self, worker_id: str, ttl: float) -> bool:
        pool = await self._connected()
        holder: str | None = await pool.fetchval(self._q["lead"], worker_id, float(ttl))
        return holder == worker_id

    @translated
    async def resign(self, worker_id: str) -> None:
        pool = await self._connected()
        await pool.execute(self._q["resign"], worker_id)

    # -- periodic schedules ----------------------------------------------------------------
    @translated
    async def now(self) -> float:
        pool = await self._connected()
        return float(await pool.fetchval(self._q["now"]))

    @translated
    async def schedule_states(self) -> dict[str, ScheduleState]:
        pool = await self._connected()
        rows = await pool.fetch(self._q["schedule_states"])
        return {r["name"]: ScheduleState(bool(r["paused"]), float(r["changed_at"])) for r in rows}

    @translated
    async def set_schedule_paused(self, name: str, paused: bool) -> None:
        pool = await self._connected()
        await pool.execute(self._q["set_schedule_paused"], name, paused)

    # -- queues ----------------------------------------------------------------------------
    @translated
    async def set_queue_paused(self, queue: str, paused: bool) -> None:
        pool = await self._connected()
        await pool.execute(self._q["set_queue_paused"], queue, paused)

    @translated
    async def queue_states(self) -> dict[str, QueueState]:
        pool = await self._connected()
        rows = await pool.fetch(self._q["queue_states"])
        return {r["name"]: QueueState(bool(r["paused"]), float(r["changed_at"])) for r in rows}

    # -- workers ---------------------------------------------------------------------------
    @translated
    async def register_worker(self, info: WorkerInfo) -> None:
        pool = await self._connected()
        await pool.execute(
            self._q["register_worker"], info.id, info.hostname, info.pid, list(info.queues),
            info.concurrency, codec.dumps(info.extra),
        )

    @translated
    async def deregister_worker(self, worker_id: str) -> None:
        pool = await self._connected()
        await pool.execute(self._q["deregister_worker"], worker_id)

    @translated
    async def list_workers(self) -> list[WorkerInfo]:
        pool = await self._connected()
        return [
            WorkerInfo(
                id=r["id"], hostname=r["hostname"], pid=r["pid"], queues=tuple(r["queues"]),
                concurrency=r["concurrency"], started_at=r["started_at"],
                heartbeat_at=r["heartbeat_at"], extra=codec.loads(r["extra"]),
            )
            for r in await pool.fetch(self._q["list_workers"])
        ]


def _limited_job(r: Any) -> LimitedJob:
    return LimitedJob(
        id=r["id"], queue=r["queue"], task=r["task"], priority=r.get("priority", 0),
        order=r.get("seq", 0), limit_concurrency=r["limit_concurrency"],
        limit_key=r["limit_key"], limit_key_concurrency=r["limit_key_concurrency"],
        rate_count=r.get("rate_count"), rate_period=r.get("rate_period"),
    )


def _limited(row: Any) -> bool:
    return (
        row["limit_concurrency"] is not None
        or row["limit_key_concurrency"] is not None
        or row["rate_count"] is not None
    )


def _accepted(items: Sequence[Completion | Failure | Release], rows: Sequence[Any]) -> list[bool]:
    """One flag per item: whether the statement accepted (id, attempt)."""
    accepted = {(r["id"], r["attempt"]) for r in rows}
    return [(i.id, i.attempt) in accepted for i in items]


def _flow_node(r: Mapping[str, Any]) -> FlowNode:
    return FlowNode(
        id=r["id"], state=JobState(r["state"]), reason=r["reason"], waiting_on=r["waiting_on"],
        depends_on=tuple(r["depends_on"] or ()), dependents=tuple(r["dependents"] or ()),
        receives=r["receives"], args=r["args"], result=r["result"],
    )


def _record(row: Mapping[str, Any]) -> JobRecord:
    """A stored row as a record, its error text unescaped (see text_escape)."""
    return record_from_row(row, unescape_errors)
