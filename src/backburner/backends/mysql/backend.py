"""The MySQL/MariaDB backend: jobs of many machines in one database of a MySQL (>= 8.0) or
MariaDB (>= 10.6) server, written only against the backend seam.

Driver: asyncmy. Of the two maintained asyncio drivers it is the one that ships type
information (mypy --strict checks our calls), needs no other package (aiomysql needs PyMySQL),
speaks MariaDB's protocol extensions, and since 0.2.13 closes a connection whose read was
cancelled instead of handing it back to the pool half-read (a cancelled worker must never
leave a desynced connection behind). It installs from wheels (CPython 3.11 checked).

Every transition is one transaction: it reads the rows it may change locked (`SELECT ...
FOR UPDATE`; claims add SKIP LOCKED, so concurrent claimers never wait for each other nor share
a job), then writes them, since MySQL has no UPDATE ... RETURNING. connections.py sends the
statements as scripts: a batch acknowledgement is one round trip, a claim two. Every time
is the server's clock (one instant per transaction, see connections.py); every write of an
attempt is fenced by its attempt number. The decisions are not made here: flows follow
backends/flow_rules.py, limits backends/limit_rules.py, rows are read by backends/records.py.

Wake-ups: MySQL has no LISTEN/NOTIFY. Local subscribers get every event at once, and every
process of this machine that uses the same server and database gets them through Unix
datagrams (the SQLite backend's notifier: nothing is sent or read while nobody publishes),
so an idle worker costs nothing. A worker on another machine finds new jobs at its next
poll (`poll_interval`), as does any worker for a job enqueued in the application's own
transaction (the event is published before that transaction commits). No asyncmy exception
leaves the backend: see errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from backburner import codec
from backburner.backends.attempt_rules import ended_state
from backburner.backends.flow_rules import Plan, plan_cancel, plan_rearm, plan_release
from backburner.backends.mysql import connections, errors, external, schema
from backburner.backends.mysql.claims import Claimer
from backburner.backends.mysql.config import MySQLConfig, parse_url
from backburner.backends.mysql.connections import NOW, Result, Row, Session, Statement, single
from backburner.backends.mysql.flows import Flows
from backburner.backends.mysql.housekeeping import fold_counts, rescue
from backburner.backends.mysql.inserts import insert
from backburner.backends.mysql.limits import Limits
from backburner.backends.mysql.rows import (
    counting,
    limited_job,
    listing,
    page,
)
from backburner.backends.outage import OutageLog
from backburner.backends.protocol import (
    TERMINAL_STATES,
    Claim,
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
from backburner.backends.records import error_entry, id_list, record_from_row
from backburner.backends.sql_files import load_queries
from backburner.backends.sqlite.datagrams import DatagramNotifier
from backburner.backends.translation import translating
from backburner.errors import ConfigurationError
from backburner.job import JobRecord, JobState
from backburner.notify import Event, Notifier

QUERIES = load_queries("backburner.backends.mysql")
CLOSE_TIMEOUT = 5.0
_RETRY_ROUNDS = 3
# An insert or a retry whose unique key an insert still in flight takes: the index refuses
# ours once that one commits, and the next round sees the holder.


def _watch(backend: MySQLBackend, outcome: BaseException | None) -> None:
    backend.outage.observe(outcome)


translated = translating(errors.TRANSLATED, errors.translate, _watch)
"""No asyncmy exception leaves the backend: see errors.py."""


def render(config: MySQLConfig, server_version: str) -> dict[str, str]:
    """The named queries with the database, the clock and the collation filled in."""
    rendered = {}
    for name, sql in QUERIES.items():
        sql = schema.render(sql, config, server_version).replace("{now}", NOW)
        rendered[name] = sql.rstrip(";")
    claimable = rendered.pop("claimable")
    rendered["claim_ready"] = claimable.replace("{lost}", "lost = 0")
    rendered["claim_suspect"] = claimable.replace("{lost}", "lost > 0")
    return rendered


class MySQLBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.config = parse_url(url)
        self._use_queries(render(self.config, ""))
        self._jobs = f"{self.config.quoted_database}.backburner_jobs"
        self._pool: Any = None
        self._opened_in: int | None = None
        self._inherited: list[Any] = []
        self._open_lock = asyncio.Lock()
        # Keyed by what names the server and database, so the processes of one machine that
        # share them find each other's sockets (see the module docstring).
        self._notifier = DatagramNotifier(f"/mysql:{self.config.identity.lower()}")
        self.outage = OutageLog(f"MySQL ({self.config.identity})")

    def _use_queries(self, queries: dict[str, str]) -> None:
        self._q = queries
        self._limits = Limits(queries)
        self._flows = Flows(queries)
        self._claims = Claimer(queries, self._limits, self._flows)

    def __repr__(self) -> str:
        return f"<MySQLBackend {self.config.identity!r}>"

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
                # Made before a fork: its sockets are the parent's. Never use or close it.
                self._inherited.append(self._pool)
                self._pool = None
            await schema.migrate(self.config, create=create)
            pool = await connections.create_pool(self.config)
            try:
                async with pool.acquire() as conn:
                    version = str(conn.get_server_info())
            except BaseException:
                pool.terminate()
                raise
            self._use_queries(render(self.config, version))
            self._pool, self._opened_in = pool, os.getpid()

    def for_another_loop(self) -> MySQLBackend:
        return type(self)(self.url)

    async def close(self) -> None:
        await self._notifier.close()
        pool, self._pool = self._pool, None
        if pool is not None and self._opened_in != os.getpid():
            self._inherited.append(pool)  # a parent's pool (see open)
            pool = None
        self._opened_in = None
        if pool is not None:
            pool.close()
            try:
                await asyncio.wait_for(pool.wait_closed(), CLOSE_TIMEOUT)
            except errors.TRANSLATED:  # TimeoutError among them
                pool.terminate()

    @translated
    async def migrate(self) -> list[int]:
        """Apply pending migrations (`backburner migrate`); works on a closed backend too."""
        return await schema.migrate(self.config)

    @translated
    async def destroy(self) -> None:
        """Drop Backburner's tables with every job in them, and the database too when
        nothing else is in it (tests; decommissioning)."""
        pool = await self._connected()
        (found,) = await single(pool, (
            "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (self.config.database,),
        ))
        ours = [r["name"] for r in found.rows if r["name"].startswith("backburner_")]
        db = self.config.quoted_database
        if len(ours) == len(found.rows):
            await single(pool, (f"DROP DATABASE IF EXISTS {db}", ()))
        elif ours:
            await single(pool, (f"DROP TABLE {', '.join(f'{db}.`{t}`' for t in ours)}", ()))
        with contextlib.suppress(OSError):  # the wake-up sockets' folder, once it is empty
            os.rmdir(self._notifier.directory)

    async def _connected(self) -> Any:
        if self._pool is None or self._opened_in != os.getpid():
            await self.open()
        return self._pool

    async def _transaction(self, work: Callable[[Session], Any]) -> Any:
        return await connections.transaction(await self._connected(), work)

    def _wake(self, queues: set[str]) -> None:
        if queues:
            self._notifier.publish([Event("wakeup", q) for q in sorted(queues)])

    async def _now(self, s: Session, *more: Statement) -> tuple[float, list[Result]]:
        """The transaction's instant of the server's clock, read with its first statements."""
        first, *rest = await s.run((self._q["clock"], ()), *more)
        return float(first.rows[0]["now"]), rest

    # -- transitions -----------------------------------------------------------------------
    @translated
    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        if not jobs:
            return []
        try:
            if connection is None:
                return await self._transaction(  # type: ignore[no-any-return]
                    lambda s: insert(s, self._q, self._jobs, jobs))
            driver = await external.driver_connection(connection)
            return await insert(Session(driver, scripts=False), self._q, self._jobs, jobs)
        except errors.TRANSLATED as exc:
            if errors.is_duplicate(exc, "jobs_id"):
                raise ConfigurationError(f"duplicate job id in {[j.id for j in jobs]}") from exc
            raise

    @translated
    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        alone: bool = False,
    ) -> Claim:
        names = tuple(dict.fromkeys(queues))
        if not names or limit < 1:
            return Claim([], await self.now(), None, False)
        return await self._transaction(  # type: ignore[no-any-return]
            lambda s: self._claims.claim(s, worker_id, names, limit, float(lease), alone)
        )

    @translated
    async def heartbeat(self, worker_id: str, lease: float) -> Heartbeat:
        params = {"worker_id": worker_id, "lease": float(lease)}

        async def work(s: Session) -> list[Row]:
            _, held, _ = await s.run((self._q["renew_leases"], params),
                                     (self._q["held"], params),
                                     (self._q["heartbeat_worker"], params), commit=True)
            return held.rows

        rows = await self._transaction(work)
        return Heartbeat(
            owned={r["id"]: r["attempt"] for r in rows},
            cancel_requested=frozenset(r["id"] for r in rows if r["cancel_requested"]),
        )

    @translated
    async def update_progress(self, job_id: str, attempt: int, progress: str) -> bool:
        params = {"id": job_id, "attempt": attempt, "progress": progress}
        (done,) = await single(await self._connected(), (self._q["update_progress"], params))
        return done.count == 1

    @translated
    async def complete(self, items: Sequence[Completion]) -> list[bool]:
        return await self._acknowledge(
            items,
            lambda i: (self._q["complete"], {"id": i.id, "attempt": i.attempt,
                                             "result": i.result}),
            lambda i: plan_release(i.id) if i.has_dependents else None,
        )

    @translated
    async def fail(self, items: Sequence[Failure]) -> list[bool]:
        def write(i: Failure) -> Statement:
            return self._q["fail"], {
                "id": i.id, "attempt": i.attempt, "retry_in": i.retry_in,
                "final": ended_state(i.reason).value, "reason": i.reason.value,
                "counts": 1 if i.counts else 0,
                # Its time is stamped by the statement, with the transaction's instant.
                "error": codec.dumps(error_entry(i.error, i.attempt, i.reason, 0.0)),
            }

        return await self._acknowledge(items, write, lambda i: (
            plan_cancel(i.id, ended_state(i.reason).value)
            if i.has_dependents and i.retry_in is None else None
        ))

    @translated
    async def release(self, items: Sequence[Release]) -> list[bool]:
        return await self._acknowledge(
            items, lambda i: (self._q["release"], {"id": i.id, "attempt": i.attempt}),
            lambda i: None,
        )

    async def _acknowledge(
        self, items: Sequence[Any], write: Callable[[Any], Statement],
        flow: Callable[[Any], Plan | None],
    ) -> list[bool]:
        """Lock the running attempts `items` name (id order) and write them, each write
        fenced by its attempt: one script from BEGIN to COMMIT, unless a flow follows (then
        the rules run in the same transaction). Freed slots are handed on afterwards, in a
        transaction of their own (a slot whose hand-over a dying process missed is handed on
        by the rescue), as the PostgreSQL backend does."""
        if not items:
            return []
        flows = any(flow(i) is not None for i in items)

        async def work(s: Session) -> tuple[list[bool], list[Row]]:
            ids = {"ids": tuple(i.id for i in items)}
            clock, locked, *_ = await s.run((self._q["clock"], ()),
                                            (self._q["lock_running"], ids),
                                            *map(write, items), commit=not flows)
            running = {(r["id"], r["attempt"]): r for r in locked.rows}
            accepted = [(i.id, i.attempt) in running for i in items]
            for i, ok in zip(items, accepted, strict=True):
                if ok and (plan := flow(i)) is not None:
                    await self._flows.apply(s, plan, float(clock.rows[0]["now"]))
            return accepted, [running[(i.id, i.attempt)] for i, ok in zip(items, accepted,
                                                                          strict=True) if ok]

        accepted, stopped = await self._transaction(work)
        await self._hand_on(stopped)
        return accepted  # type: ignore[no-any-return]

    async def _hand_on(self, stopped: Sequence[Row], stranded: bool = False) -> None:
        """Freed slots (and with `stranded`, slots nobody handed on) to parked jobs."""
        if not stranded and all(limited_job(r) is None for r in stopped):
            return
        woken: set[str] = set()

        async def work(s: Session) -> None:
            await self._limits.free_slots(s, stopped, woken)
            if stranded:
                await self._limits.unpark_stranded(s, woken)

        await self._transaction(work)
        self._wake(woken)

    @translated
    async def cancel(self, job_id: str) -> JobState | None:
        async def work(s: Session) -> JobState | None:
            now, (found,) = await self._now(s, (self._q["lock_job"], {"id": job_id}))
            if not found.rows:
                return None
            state, params = found.rows[0]["state"], {"id": job_id, "now": now}
            if state in ("pending", "scheduled"):
                s.defer((self._q["cancel_waiting"], params))
                if found.rows[0]["dependents"] is not None:
                    await self._flows.apply(s, plan_cancel(job_id, "cancelled"), now)
                return JobState.CANCELLED
            if state == "running":
                s.defer((self._q["request_cancel"], params))
            return _state(state)

        return await self._transaction(work)  # type: ignore[no-any-return]

    @translated
    async def retry(self, job_id: str) -> JobState | None:
        async def work(s: Session) -> JobState | None:
            now, (found,) = await self._now(s, (self._q["lock_job"], {"id": job_id}))
            if not found.rows:
                return None
            job = found.rows[0]
            # A job of a flow cancelled while it still waited never got its input: not retried.
            if job["state"] not in ("failed", "cancelled") or job["waiting_on"] != 0:
                return _state(job["state"])
            keep = True
            if job["unique_hash"] is not None and job["unique_scope"] in ("active", "queued"):
                # Back in its scope it holds its key again, unless another live job took it
                # meanwhile: then it runs without one (see backburner.unique).
                keep = not await s.rows(self._q["other_holder"],
                                        {"hash": job["unique_hash"], "id": job_id})
            s.defer((self._q["retry"], {"id": job_id, "now": now, "keep_key": keep}))
            if job["dependents"] is not None:
                await self._flows.apply(s, plan_rearm(job_id), now)
            return JobState.PENDING

        for round_ in range(_RETRY_ROUNDS):
            try:
                return await self._transaction(work)  # type: ignore[no-any-return]
            except errors.TRANSLATED as exc:
                if not errors.is_duplicate(exc, "jobs_unique") or round_ == _RETRY_ROUNDS - 1:
                    raise
        raise AssertionError("unreachable")

    @translated
    async def delete(self, job_id: str) -> bool:
        async def work(s: Session) -> bool:
            now, (found,) = await self._now(s, (self._q["lock_job"], {"id": job_id}))
            if not found.rows or found.rows[0]["state"] == "running":
                return False
            s.defer((self._q["delete"], {"id": job_id}))
            job = found.rows[0]
            if job["dependents"] is not None and job["state"] in ("pending", "scheduled"):
                # What waits for a job that never ran would wait for ever.
                dependents = id_list(job["dependents"])
                await self._flows.apply(s, plan_cancel(job_id, "deleted", dependents), now)
            return True

        return await self._transaction(work)  # type: ignore[no-any-return]

    @translated
    async def rescue_expired(self, max_lost: int) -> list[Transition]:
        pool = await self._connected()
        (expired,) = await single(pool, (self._q["expired"], ()))
        moved: list[Transition] = []
        rows: list[Row] = []
        if expired.rows:
            seqs = {"seqs": tuple(r["seq"] for r in expired.rows)}
            moved, rows = await self._transaction(
                lambda s: rescue(s, self._q, self._flows, seqs, max_lost))
        # A dead worker's slots come back with its jobs, and slots whose hand-over a dying
        # process missed go to their parked jobs.
        await self._hand_on(rows, stranded=True)
        await single(pool, (self._q["forget_dead_workers"], {"now": await self.now()}))
        # The counts' log (migration 2) is folded here too, not only when someone reads.
        await self._transaction(lambda s: fold_counts(s, self._q))
        return moved

    @translated
    async def prune(self, older_than: Mapping[JobState, float], limit: int) -> int:
        states = [s for s in TERMINAL_STATES if s in older_than]
        if not states or limit < 1:
            return 0

        async def work(s: Session) -> int:
            now, _ = await self._now(s)
            found = await s.run(*(
                (self._q["prunable"], {"state": state.value, "now": now, "limit": limit,
                                       "before": now - float(older_than[state])})
                for state in states
            ))
            seqs = tuple(r["seq"] for result in found for r in result.rows)[:limit]
            if not seqs:
                return 0
            (gone,) = await s.run((self._q["prune"], {"seqs": seqs}), commit=True)
            return gone.count

        return await self._transaction(work)  # type: ignore[no-any-return]

    # -- reads -----------------------------------------------------------------------------
    @translated
    async def get(self, job_id: str) -> JobRecord | None:
        (found,) = await single(await self._connected(), (self._q["get"], {"id": job_id}))
        return record_from_row(found.rows[0]) if found.rows else None

    @translated
    async def list_jobs(
        self, filter: JobFilter, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        statements = listing(self._jobs, filter, limit, cursor, self._q["search"])
        found = await single(await self._connected(), *statements)
        return page([result.rows for result in found], limit)

    @translated
    async def count_jobs(self, filter: JobFilter) -> int:
        statement = counting(self._jobs, filter, self._q["search"])
        (found,) = await single(await self._connected(), statement)
        return int(found.rows[0]["n"])

    @translated
    async def counts(self) -> dict[tuple[str, JobState], int]:
        # Kept by triggers (migration 2); folding first keeps the log short for this read.
        await self._transaction(lambda s: fold_counts(s, self._q))
        (found,) = await single(await self._connected(), (self._q["counts"], ()))
        return {(r["queue"], JobState(r["state"])): int(r["n"]) for r in found.rows}

    @translated
    async def oldest_pending(self) -> dict[str, float]:
        pool = await self._connected()
        (found,) = await single(pool, (self._q["counts"], ()))
        queues = [r["queue"] for r in found.rows if r["state"] == "pending"]
        if not queues:
            return {}
        ages = await single(pool, *((self._q["oldest_ready"], {"queue": q}) for q in queues))
        return {q: max(0.0, float(a.rows[0]["age"])) for q, a in zip(queues, ages, strict=True)
                if a.rows and a.rows[0]["age"] is not None}

    # -- housekeeping leader ---------------------------------------------------------------
    @translated
    async def lead(self, worker_id: str, ttl: float) -> bool:
        params = {"worker_id": worker_id, "ttl": float(ttl)}
        _, holder = await single(await self._connected(), (self._q["lead"], params),
                                 (self._q["leader"], ()))
        return bool(holder.rows) and holder.rows[0]["holder"] == worker_id

    @translated
    async def resign(self, worker_id: str) -> None:
        await single(await self._connected(), (self._q["resign"], {"worker_id": worker_id}))

    # -- periodic schedules ----------------------------------------------------------------
    @translated
    async def now(self) -> float:
        (found,) = await single(await self._connected(), (self._q["now"], ()))
        return float(found.rows[0]["now"])

    @translated
    async def schedule_states(self) -> dict[str, ScheduleState]:
        (found,) = await single(await self._connected(), (self._q["schedule_states"], ()))
        return {r["name"]: ScheduleState(bool(r["paused"]), float(r["changed_at"]))
                for r in found.rows}

    @translated
    async def set_schedule_paused(self, name: str, paused: bool) -> None:
        params = {"name": name, "paused": int(paused)}
        await single(await self._connected(), (self._q["set_schedule_paused"], params))

    # -- queues ----------------------------------------------------------------------------
    @translated
    async def set_queue_paused(self, queue: str, paused: bool) -> None:
        params = {"name": queue, "paused": int(paused)}
        await single(await self._connected(), (self._q["set_queue_paused"], params))

    @translated
    async def queue_states(self) -> dict[str, QueueState]:
        (found,) = await single(await self._connected(), (self._q["queue_states"], ()))
        return {r["name"]: QueueState(bool(r["paused"]), float(r["changed_at"]))
                for r in found.rows}

    # -- workers ---------------------------------------------------------------------------
    @translated
    async def register_worker(self, info: WorkerInfo) -> None:
        await single(await self._connected(), (self._q["register_worker"], {
            "id": info.id, "hostname": info.hostname, "pid": info.pid,
            "queues": codec.dumps(list(info.queues)), "concurrency": info.concurrency,
            "extra": codec.dumps(info.extra),
        }))

    @translated
    async def deregister_worker(self, worker_id: str) -> None:
        await single(await self._connected(), (self._q["deregister_worker"], {"id": worker_id}))

    @translated
    async def list_workers(self) -> list[WorkerInfo]:
        (found,) = await single(await self._connected(), (self._q["list_workers"], ()))
        return [
            WorkerInfo(
                id=r["id"], hostname=r["hostname"], pid=r["pid"],
                queues=tuple(codec.loads(r["queues"])), concurrency=r["concurrency"],
                started_at=r["started_at"], heartbeat_at=r["heartbeat_at"],
                extra=codec.loads(r["extra"]),
            )
            for r in found.rows
        ]


def _state(value: Any) -> JobState | None:
    """A stored state; None for one something other than Backburner wrote (R20)."""
    try:
        return JobState(value)
    except ValueError:
        return None
