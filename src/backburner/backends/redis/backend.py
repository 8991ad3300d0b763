"""The Redis backend: jobs of many machines in one Redis server (or Cluster).

Each transition is one Lua script (scripts.py, lua/) on the keys of ONE queue (keys.py), so it
is atomic and Cluster-safe. What a script cannot see, because it lives in another slot, is
orchestrated here: the directory of job ids (which queue holds a job), the registry of queues,
and calls that span queues (a claim over several queues takes them in order; an ack batch is
one script per queue, all in one pipeline). Every timestamp comes from the server's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from backburner import codec
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
from backburner.backends.redis import checks, listing, pipelined, rows, wire
from backburner.backends.redis.client import Client, Connected, connect, is_cluster
from backburner.backends.redis.errors import TRANSLATED, translate
from backburner.backends.redis.keys import FINISHED_STATES, LAYOUT_VERSION, Keys, QueueKeys
from backburner.backends.redis.notifier import RedisNotifier
from backburner.backends.redis.scripts import Call, Script, Scripts, Wait
from backburner.backends.redis.url import parse_url
from backburner.backends.translation import translating
from backburner.errors import BackendError, ConfigurationError, StoreNotFoundError
from backburner.job import FailureReason, JobRecord, JobState
from backburner.notify import Event, Notifier

log = logging.getLogger("backburner.redis")

SCRIPTS = Scripts()
RESCUE_BATCH = 1000
"""Most expired leases one rescue script takes back (keeps each script short)."""
DEAD_WORKER_AGE = 3600.0
"""Seconds without a heartbeat after which a worker is dropped from the registry."""
QUEUE_CACHE_SIZE = 100_000

ENQUEUED_STATES = ("pending", "scheduled")
COMPLETED_STATES = ("completed",)
RUNNING_STATES = ("running",)
"""The states of the job events lua/insert.lua, lua/complete.lua and lua/claim.lua publish
themselves."""

translated = translating(TRANSLATED, translate)
"""No redis-py exception leaves the backend: see errors.py."""


class RedisBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.options = parse_url(url)
        self.keys = Keys(self.options.prefix)
        self._client: Client | None = None
        self._connected_to: Connected | None = None
        """The client and its helpers (a Sentinel set-up's clients of the sentinels)."""
        self._wait = (
            Wait(self.options.wait_replicas, self.options.wait_timeout)
            if self.options.wait_replicas else None
        )
        """With `wait_replicas`: what every acknowledging call waits for (scripts.py)."""
        self._pipe: pipelined.PipelinedConnection | None = None
        """Single server without `wait_replicas`: where scripts go (pipelined.py)."""
        self._notifier = RedisNotifier(self.keys, lambda: self._client)
        self._job_queues: dict[str, str] = {}
        """Job id -> queue, as far as this process has seen (a job never changes queue)."""

    def __repr__(self) -> str:
        return f"<RedisBackend {self.options.display} prefix={self.keys.prefix!r}>"

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    # -- lifecycle -------------------------------------------------------------------------
    @translated
    async def open(self, *, create: bool = True) -> None:
        if self._client is not None:
            return
        connected = await connect(self.options)
        client = connected.client
        try:
            where = self.options.display
            await checks.check_version(client, where)
            # The layout key is written by the first open: without it, nothing was stored.
            if not create and not await client.exists(self.keys.layout):
                raise StoreNotFoundError(
                    f"no Backburner data under prefix {self.keys.prefix!r} at {where}: check "
                    "the URL, or run `backburner migrate` to create the store"
                )
            await checks.check_durability(client, self.options.profile, where)
            await self._check_layout(client)
            await self._index_finished(client)
            await SCRIPTS.load(client)
        except BaseException:
            await connected.aclose()
            raise
        self._client, self._connected_to = client, connected
        if pipelined.available() and self._wait is None and isinstance(client, Redis):
            pool = client.connection_pool
            kwargs = pool.connection_kwargs
            self._pipe = pipelined.PipelinedConnection(
                pool.make_connection, kwargs.get("socket_timeout"),
                kwargs.get("encoding", "utf-8") if kwargs.get("decode_responses") else None,
            )

    async def _check_layout(self, client: Client) -> None:
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.layout, LAYOUT_VERSION, nx=True)
            pipe.get(self.keys.layout)
            _, version = await pipe.execute()
        if int(version) > LAYOUT_VERSION:
            raise ConfigurationError(
                f"{self.options.display} prefix {self.keys.prefix!r} holds layout version "
                f"{version}, newer than this Backburner understands ({LAYOUT_VERSION})"
            )

    async def _index_finished(self, client: Client) -> None:
        """File jobs that finished before the per-state finished indexes existed (stores
        written by an earlier Backburner), so retention prunes them too. Once per store: a
        marker says it is done. Idempotent (NX), so processes opening at once may all run
        it; an entry for a job deleted meanwhile is dropped by the pruner."""
        if await client.exists(self.keys.finished_indexed):
            return
        for queue in await self._known_queues(client):
            q = self.keys.queue(queue)
            for state in FINISHED_STATES:
                batch: list[str] = []
                async for job_id, _ in client.zscan_iter(q.state(state), count=1000):
                    batch.append(job_id)
                    if len(batch) >= 1000:
                        await self._file_finished(client, q, state, batch)
                        batch = []
                await self._file_finished(client, q, state, batch)
        await client.set(self.keys.finished_indexed, 1)

    async def _file_finished(
        self, client: Client, q: QueueKeys, state: JobState, ids: list[str]
    ) -> None:
        if not ids:
            return
        async with client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(q.job(job_id), "finished_at")
            found = await pipe.execute()
        scores = {i: float(f) for i, f in zip(ids, found, strict=True) if f is not None}
        if scores:
            await client.zadd(q.finished(state), scores, nx=True)

    def for_another_loop(self) -> RedisBackend:
        return type(self)(self.url)

    async def close(self) -> None:
        await self._notifier.close()
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            await pipe.close()
        connected, self._connected_to, self._client = self._connected_to, None, None
        if connected is not None:
            await connected.aclose()

    async def migrate(self) -> list[int]:
        # Nothing to migrate yet: layout version 1 is written at open().
        await self.open()
        return []

    @translated
    async def destroy(self) -> None:
        """Delete every key under this backend's prefix (tests; decommissioning a store)."""
        client = await self._connected()
        batch: list[str] = []
        async for key in client.scan_iter(match=self.keys.scan_pattern, count=1000):
            if self.keys.owns(key):
                batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
        self._job_queues.clear()

    async def _connected(self) -> Client:
        if self._client is None:
            await self.open()
        assert self._client is not None
        return self._client

    # -- helpers ---------------------------------------------------------------------------
    def _call(self, script: Script, queue: str, *args: str | int | float) -> Call:
        q = self.keys.queue(queue)
        return Call(script, q.script_keys[:1], (q.base, queue, *args))

    async def _run(self, client: Client, call: Call, wait: Wait | None = None) -> Any:
        """One script call, on the pipelined connection where there is one (there is none
        with `wait_replicas`: WAIT must follow on the connection that wrote)."""
        if self._pipe is not None:
            return await SCRIPTS.run_piped(self._pipe, client, call)
        return await SCRIPTS.run(client, call, wait)

    async def _run_many(
        self, client: Client, calls: Sequence[Call], wait: Wait | None = None
    ) -> list[Any]:
        if self._pipe is not None:
            return await SCRIPTS.run_many_piped(self._pipe, client, calls)
        return await SCRIPTS.run_many(client, calls, wait)

    async def _hgetall(self, client: Client, key: str) -> dict[str, str]:
        """HGETALL, on the pipelined connection where there is one (concurrent readers, a
        web process's result waiters, share its round trips)."""
        pipe = self._pipe
        if pipe is not None and (packed := wire.pack(("HGETALL", key))) is not None:
            reply = await pipe.call(packed)
            if isinstance(reply, list):  # RESP2: a flat list of fields and values
                return dict(zip(reply[::2], reply[1::2], strict=True))
            found: dict[str, str] = reply
            return found
        # Through Any, not a cast or a type: ignore: redis-py's annotation of hgetall
        # changes between releases, and either would then be flagged as redundant.
        raw: Any = await client.hgetall(key)
        return dict(raw)

    async def _hmget(self, client: Client, key: str, fields: list[str]) -> list[str | None]:
        pipe = self._pipe
        if pipe is not None and (packed := wire.pack(("HMGET", key, *fields))) is not None:
            values: list[str | None] = await pipe.call(packed)
            return values
        raw: Any = await client.hmget(key, fields)
        return list(raw)

    def _global(self, script: Script, *args: str | int | float) -> Call:
        return Call(script, self.keys.global_keys, args)

    def _remember(self, job_id: str, queue: str) -> None:
        if len(self._job_queues) >= QUEUE_CACHE_SIZE:
            # Forget the oldest tenth (dicts keep insertion order).
            for old in list(self._job_queues)[: QUEUE_CACHE_SIZE // 10]:
                del self._job_queues[old]
        self._job_queues[job_id] = queue

    async def _queues_of(
        self, client: Client, ids: Sequence[str], fresh: bool = False
    ) -> dict[str, str]:
        """The queue of each known id (from the directory for ids this process has not
        seen, or for all of them with `fresh`)."""
        found = {} if fresh else {i: q for i in ids if (q := self._job_queues.get(i))}
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            for job_id, queue in zip(
                missing, await self._hmget(client, self.keys.directory, missing), strict=True
            ):
                if queue is not None:
                    found[job_id] = str(queue)
                    self._remember(job_id, str(queue))
        return found

    async def _on_job(
        self, job_id: str, script: Script, unknown: Any, *args: str | int | float
    ) -> Any:
        """Run a single-job script on the job's queue. A cached queue can only be wrong if
        the id was deleted and reused in another queue; an `unknown` answer is re-checked
        against the directory once."""
        client = await self._connected()
        for fresh in (False, True):
            queue = (await self._queues_of(client, [job_id], fresh)).get(job_id)
            if queue is None:
                return unknown
            result = await self._run(
                client, self._call(script, queue, job_id, *args), self._wait
            )
            if result != unknown:
                return result
            if fresh or job_id not in self._job_queues:
                break
        return unknown

    async def _grouped(
        self, ids: Sequence[str], script: Script, args_of: Callable[[list[int]], list[Any]]
    ) -> list[bool]:
        """One script per queue over the items at the given positions, all in one pipeline;
        one accepted flag per item (unknown ids are refused)."""
        client = await self._connected()
        queues = await self._queues_of(client, ids)
        by_queue: dict[str, list[int]] = {}
        for position, job_id in enumerate(ids):
            queue = queues.get(job_id)
            if queue is not None:
                by_queue.setdefault(queue, []).append(position)
        calls = [self._call(script, q, *args_of(positions)) for q, positions in by_queue.items()]
        accepted = [False] * len(ids)
        woken = []
        for queue, positions, flags in zip(
            by_queue, by_queue.values(), await self._run_many(client, calls, self._wait),
            strict=True,
        ):
            for position, flag in zip(positions, flags, strict=True):
                accepted[position] = flag in (1, 2)
            # 2: the job freed a slot of a limit that a parked job got (lua/complete.lua).
            if 2 in flags:
                woken.append(queue)
        if woken:
            self._notifier.publish([Event("wakeup", q) for q in woken])
        return accepted

    async def _known_queues(self, client: Client) -> list[str]:
        return sorted(str(q) for q in await client.smembers(self.keys.queues))

    # -- transitions -----------------------------------------------------------------------
    @translated
    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        if connection is not None:
            raise ConfigurationError(
                "enqueueing inside the application's transaction needs the PostgreSQL backend"
            )
        if not jobs:
            return []
        client = await self._connected()
        if self._wait is None and not is_cluster(client) and len({j.queue for j in jobs}) == 1:
            return await self._insert_one_queue(client, jobs)
        # One round trip: the directory entries (where ids are unique across queues, all or
        # none) and one script per queue (each all or none), pipelined. Ids are random
        # (new_job_id), so a clash means a bug or a collision; then what this call stored is
        # taken back. Between the scripts a reserved id names no job yet: readers treat it
        # as unknown.
        reserve = self._global(SCRIPTS["reserve"], *(x for j in jobs for x in (j.id, j.queue)))
        by_queue: dict[str, list[NewJob]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        calls = [
            self._call(SCRIPTS["insert"], q, *self._insert_head(q, reserving=False),
                       *rows.insert_args(batch))
            for q, batch in by_queue.items()
        ]
        if is_cluster(client):
            # A cluster pipeline sends each node its part at once, so the queue scripts
            # could run although the reserve failed (its node down): a job stored without a
            # directory entry would run but be unknown by id. The reserve goes first, in a
            # round trip of its own; a failure after it leaves reserved ids naming no job,
            # as above (readers treat them as unknown; the entries stay, ~100 bytes each).
            status = await self._run(client, reserve, self._wait)
            # After a clash no queue script ran: marked as not stored (nothing to take back).
            results: list[Any] = (
                await self._run_many(client, calls, self._wait) if status[0] == 0
                else [[1]] * len(calls)
            )
        else:
            status, *results = await self._run_many(client, [reserve, *calls], self._wait)
        clash = status[1] if status[0] != 0 else next(
            (r[1] for r in results if r[0] != 0), None
        )
        if clash is not None:
            await self._unwind(client, by_queue, results, clash, reserved=status[0] == 0)
            raise ConfigurationError(f"duplicate job id {clash}")
        # Each queue script answers the id used per job: a job whose unique key a live job
        # holds was not stored, and its reserved directory entry goes.
        used: dict[str, Inserted] = {}
        for (_, batch), reply in zip(by_queue.items(), results, strict=True):
            for n, job in enumerate(batch):
                job_id, state = str(reply[1 + 2 * n]), reply[2 + 2 * n]
                used[job.id] = Inserted(job_id, JobState(state) if state else None)
        unused = [j.id for j in jobs if used[j.id].id != j.id]
        if unused:
            await client.hdel(self.keys.directory, *unused)
        stored = [j for j in jobs if used[j.id].id == j.id]
        for job in stored:
            self._remember(job.id, job.queue)
        self._notifier.sent_by_script([(j.id, 0, ENQUEUED_STATES) for j in stored])
        return [used[j.id] for j in jobs]

    def _insert_head(self, queue: str, reserving: bool) -> tuple[str, ...]:
        """lua/insert.lua's own first arguments: whether it reserves the ids, and what it
        publishes (the scripts publish the wake-ups and enqueue events themselves)."""
        notifier = self._notifier
        return ("1" if reserving else "", notifier.channel("wakeup"),
                notifier.wakeup_message(queue), notifier.channel("job"), notifier.origin)

    async def _insert_one_queue(self, client: Client, jobs: Sequence[NewJob]) -> list[Inserted]:
        """What `insert` does, for jobs of one queue on a single server: one script call
        that reserves the ids and stores the jobs (lua/insert.lua with its reserving flag),
        without a pipeline's cost, and nothing to take back on a clash (it checks before it
        writes). The common case: one `enqueue`."""
        queue = jobs[0].queue
        q = self.keys.queue(queue)
        reply = await self._run(client, Call(
            SCRIPTS["insert"], (q.script_keys[0], *self.keys.global_keys[:2]),
            (q.base, queue, *self._insert_head(queue, reserving=True), *rows.insert_args(jobs)),
        ))
        if reply[0] != 0:
            raise ConfigurationError(f"duplicate job id {reply[1]}")
        used = [
            Inserted(str(reply[1 + 2 * n]), JobState(reply[2 + 2 * n]) if reply[2 + 2 * n]
                     else None)
            for n in range(len(jobs))
        ]
        unused = [j.id for j, u in zip(jobs, used, strict=True) if u.id != j.id]
        if unused:
            await client.hdel(self.keys.directory, *unused)
        stored = [j for j, u in zip(jobs, used, strict=True) if u.id == j.id]
        for job in stored:
            self._remember(job.id, job.queue)
        self._notifier.sent_by_script([(j.id, 0, ENQUEUED_STATES) for j in stored])
        return used

    async def _unwind(
        self, client: Client, by_queue: dict[str, list[NewJob]], results: list[Any], clash: str,
        reserved: bool,
    ) -> None:
        """Take back what an insert with a clashing id stored, so the batch is all or none:
        the jobs of every queue script that succeeded and, if the reserve succeeded, the
        directory entries (but the clashing id's, which names an older job)."""
        calls = [
            self._call(SCRIPTS["delete"], q, j.id)
            for (q, batch), r in zip(by_queue.items(), results, strict=True) if r[0] == 0
            for j in batch
        ]
        await self._run_many(client, calls)
        if reserved:
            ids = [j.id for batch in by_queue.values() for j in batch if j.id != clash]
            if ids:
                await client.hdel(self.keys.directory, *ids)

    @translated
    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        alone: bool = False,
    ) -> Claim:
        client = await self._connected()
        queues = list(dict.fromkeys(queues))
        if len(queues) == 1:
            # The common case, one round trip: the script itself prefers a suspect when
            # the worker is idle.
            now, next_run_at, suspects, jobs = await self._claim_queue(
                client, queues[0], worker_id, limit, lease, "both" if alone else "normal"
            )
            return Claim(jobs, now, next_run_at, suspects)
        if alone:
            # A suspect in any queue comes before ordinary jobs of the first one.
            for queue in queues:
                now, _, _, jobs = await self._claim_queue(
                    client, queue, worker_id, 1, lease, "suspect"
                )
                if jobs:
                    return Claim(jobs, now, None, False)
        claimed: list[ClaimedJob] = []
        first_now: float | None = None
        due: list[float] = []
        suspects = False
        visited = 0
        for queue in queues:
            if len(claimed) >= limit:
                break
            now, next_run_at, waiting, jobs = await self._claim_queue(
                client, queue, worker_id, limit - len(claimed), lease, "normal"
            )
            visited += 1
            first_now = now if first_now is None else first_now
            claimed += jobs
            suspects = suspects or waiting
            if next_run_at is not None:
                due.append(next_run_at)
        if not suspects and visited < len(queues):
            async with client.pipeline(transaction=False) as pipe:
                for queue in queues[visited:]:
                    pipe.exists(self.keys.queue(queue).suspects)
                    pipe.hget(self.keys.queue(queue).control, "paused")
                found = await pipe.execute()
            # Suspects of a paused queue wait for its resume, not for an idle worker.
            suspects = any(n and paused != "1" for n, paused in zip(found[::2], found[1::2],
                                                                     strict=True))
        assert first_now is not None
        next_due = min(due) if due and len(claimed) < limit else None
        return Claim(claimed, first_now, next_due, suspects)

    async def _claim_queue(
        self, client: Client, queue: str, worker_id: str, limit: int, lease: float, mode: str
    ) -> tuple[float, float | None, bool, list[ClaimedJob]]:
        # The script publishes the `running` events itself (lua/claim.lua).
        reply = await self._run(client, self._call(
            SCRIPTS["claim"], queue, worker_id, limit, repr(float(lease)), mode,
            self._notifier.origin, self._notifier.channel("job"),
        ))
        now = float(reply[0])
        jobs = rows.claimed_jobs(queue, now, reply[3:])
        for job in jobs:
            self._remember(job.id, queue)
        self._notifier.sent_by_script([(j.id, j.attempt, RUNNING_STATES) for j in jobs])
        return now, float(reply[1]) if reply[1] else None, reply[2] == 1, jobs

    @translated
    async def heartbeat(self, worker_id: str, lease: float) -> Heartbeat:
        client = await self._connected()
        queues = await self._known_queues(client)
        lease_s = repr(float(lease))
        calls = [self._call(SCRIPTS["heartbeat"], q, worker_id, lease_s) for q in queues]
        calls.append(self._global(SCRIPTS["beat_worker"], worker_id))
        results = await self._run_many(client, calls)
        owned: dict[str, int] = {}
        cancel: set[str] = set()
        for reply in results[:-1]:
            for i in range(0, len(reply), 3):
                job_id, attempt, cancel_requested = reply[i : i + 3]
                owned[job_id] = int(attempt)
                if cancel_requested == "1":
                    cancel.add(job_id)
        return Heartbeat(owned, frozenset(cancel))

    @translated
    async def update_progress(self, job_id: str, attempt: int, progress: str) -> bool:
        return bool(await self._on_job(job_id, SCRIPTS["progress"], 0, attempt, progress) == 1)

    @translated
    async def complete(self, items: Sequence[Completion]) -> list[bool]:
        # The script publishes the `completed` events itself (lua/complete.lua).
        head = (self._notifier.origin, self._notifier.channel("job"))
        accepted = await self._grouped(
            [i.id for i in items], SCRIPTS["complete"],
            lambda at: [*head,
                        *(x for p in at for x in (items[p].id, items[p].attempt, items[p].result))],
        )
        self._notifier.sent_by_script([
            (i.id, i.attempt, COMPLETED_STATES) for i, ok in zip(items, accepted, strict=True) if ok
        ])
        return accepted

    @translated
    async def fail(self, items: Sequence[Failure]) -> list[bool]:
        return await self._grouped(
            [i.id for i in items], SCRIPTS["fail"],
            lambda at: rows.fail_args([items[p] for p in at]),
        )

    @translated
    async def release(self, items: Sequence[Release]) -> list[bool]:
        return await self._grouped(
            [i.id for i in items], SCRIPTS["release"],
            lambda at: [x for p in at for x in (items[p].id, items[p].attempt)],
        )

    @translated
    async def cancel(self, job_id: str) -> JobState | None:
        state = await self._on_job(job_id, SCRIPTS["cancel"], None)
        return JobState(state) if state else None

    @translated
    async def retry(self, job_id: str) -> JobState | None:
        state = await self._on_job(job_id, SCRIPTS["retry"], None)
        return JobState(state) if state else None

    @translated
    async def delete(self, job_id: str) -> bool:
        deleted = bool(await self._on_job(job_id, SCRIPTS["delete"], 0) == 1)
        if deleted:
            client = await self._connected()
            # After the job itself: a crash in between leaves a directory entry naming no
            # job, which readers treat as unknown.
            await client.hdel(self.keys.directory, job_id)
            self._job_queues.pop(job_id, None)
        return deleted

    @translated
    async def rescue_expired(self, max_lost: int) -> list[Transition]:
        client = await self._connected()
        queues = await self._known_queues(client)
        moved: list[Transition] = []
        first = True
        while queues:
            calls = [self._call(SCRIPTS["rescue"], q, max_lost, RESCUE_BATCH) for q in queues]
            if first:
                # Workers that stopped heartbeating long ago are gone: keep the registry small.
                calls.append(self._global(SCRIPTS["forget_workers"], DEAD_WORKER_AGE))
            results = await self._run_many(client, calls)
            full = []
            woken = set()
            for queue, reply in zip(queues, results[: len(queues)], strict=True):
                for i in range(0, len(reply), 6):
                    job_id, task, state, attempt, reason, unparked = reply[i : i + 6]
                    moved.append(Transition(
                        job_id, task, queue, JobState(state), int(attempt),
                        FailureReason(reason) if reason else None,
                    ))
                    if unparked == 1:
                        woken.add(queue)
                if len(reply) == 6 * RESCUE_BATCH:
                    full.append(queue)
            if woken:
                # Slots a dead worker held went to parked jobs: their workers claim them now.
                self._notifier.publish([Event("wakeup", q) for q in sorted(woken)])
            queues, first = full, False
        return moved

    @translated
    async def prune(self, older_than: Mapping[JobState, float], limit: int) -> int:
        ages = [x for s in TERMINAL_STATES if s in older_than
                for x in (s.value, repr(float(older_than[s])))]
        if not ages or limit < 1:
            return 0
        client = await self._connected()
        pruned = 0
        for queue in await self._known_queues(client):
            if pruned >= limit:
                break
            ids = await self._run(
                client, self._call(SCRIPTS["prune"], queue, limit - pruned, *ages)
            )
            if ids:
                # After the jobs themselves, as in delete: a crash in between leaves
                # directory entries naming no job, which readers treat as unknown.
                await client.hdel(self.keys.directory, *ids)
                for job_id in ids:
                    self._job_queues.pop(job_id, None)
                pruned += len(ids)
        return pruned

    # -- reads -----------------------------------------------------------------------------
    @translated
    async def get(self, job_id: str) -> JobRecord | None:
        client = await self._connected()
        for fresh in (False, True):
            queue = (await self._queues_of(client, [job_id], fresh)).get(job_id)
            if queue is None:
                return None
            h = await self._hgetall(client, self.keys.queue(queue).job(job_id))
            if h:
                return rows.record_from_hash(h)
            if fresh:
                break
        return None

    @translated
    async def list_jobs(
        self, filter: JobFilter, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        client = await self._connected()
        if filter.queue is not None:
            queues = [filter.queue]
        else:
            queues = await self._known_queues(client)
        return await listing.list_jobs(client, self.keys, queues, filter, limit, cursor)

    @translated
    async def count_jobs(self, filter: JobFilter) -> int:
        client = await self._connected()
        if filter.queue is not None:
            queues = [filter.queue]
        else:
            queues = await self._known_queues(client)
        return await listing.count_jobs(client, self.keys, queues, filter)

    @translated
    async def counts(self) -> dict[tuple[str, JobState], int]:
        client = await self._connected()
        return await listing.counts(client, self.keys, await self._known_queues(client))

    @translated
    async def oldest_pending(self) -> dict[str, float]:
        client = await self._connected()
        queues = await self._known_queues(client)
        return await listing.oldest_pending(client, self.keys, queues, await self.now())

    # -- housekeeping leader ---------------------------------------------------------------
    @translated
    async def lead(self, worker_id: str, ttl: float) -> bool:
        client = await self._connected()
        ttl_ms = max(1, round(ttl * 1000))
        return bool(await self._run(client, self._global(SCRIPTS["lead"], worker_id, ttl_ms)))

    @translated
    async def resign(self, worker_id: str) -> None:
        client = await self._connected()
        await self._run(client, self._global(SCRIPTS["resign"], worker_id))

    # -- periodic schedules ----------------------------------------------------------------
    @translated
    async def now(self) -> float:
        client = await self._connected()
        seconds, micros = await client.time()
        return float(seconds) + float(micros) / 1e6

    @translated
    async def schedule_states(self) -> dict[str, ScheduleState]:
        client = await self._connected()
        found = await client.hgetall(self.keys.schedules)
        states: dict[str, ScheduleState] = {}
        for name, raw in found.items():
            data = codec.loads(raw)
            states[str(name)] = ScheduleState(bool(data["paused"]), float(data["changed_at"]))
        return states

    @translated
    async def set_schedule_paused(self, name: str, paused: bool) -> None:
        # One writer's view wins (last write); changed_at is the server's clock.
        changed_at = await self.now()
        client = await self._connected()
        await client.hset(
            self.keys.schedules, name,
            codec.dumps({"paused": paused, "changed_at": changed_at}),
        )

    # -- queues ----------------------------------------------------------------------------
    @translated
    async def set_queue_paused(self, queue: str, paused: bool) -> None:
        client = await self._connected()
        # Registered first, so queue_states finds it (a queue may be paused before its first
        # job); the control hash itself lives in the queue's slot, where claim.lua reads it.
        await client.sadd(self.keys.queues, queue)
        await self._run(
            client, self._call(SCRIPTS["set_paused"], queue, "1" if paused else "0"), self._wait
        )

    @translated
    async def queue_states(self) -> dict[str, QueueState]:
        client = await self._connected()
        queues = await self._known_queues(client)
        async with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.hmget(self.keys.queue(queue).control, ["paused", "changed_at"])
            replies = await pipe.execute()
        return {
            queue: QueueState(paused == "1", float(changed_at))
            for queue, (paused, changed_at) in zip(queues, replies, strict=True)
            if changed_at is not None
        }

    # -- workers ---------------------------------------------------------------------------
    @translated
    async def register_worker(self, info: WorkerInfo) -> None:
        client = await self._connected()
        await self._run(
            client, self._global(SCRIPTS["register_worker"], info.id, rows.worker_json(info))
        )

    @translated
    async def deregister_worker(self, worker_id: str) -> None:
        client = await self._connected()
        await self._run(client, self._global(SCRIPTS["deregister_worker"], worker_id))

    @translated
    async def list_workers(self) -> list[WorkerInfo]:
        client = await self._connected()
        async with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.workers)
            pipe.zrange(self.keys.beats, 0, -1, withscores=True)
            infos, beats = await pipe.execute()
        beat_of = {member: float(score) for member, score in beats}
        try:
            workers = [rows.worker_from_json(v, beat_of.get(k)) for k, v in infos.items()]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"unreadable worker entry under {self.keys.workers}: {exc}") from exc
        return sorted(workers, key=lambda w: (w.started_at, w.id))
