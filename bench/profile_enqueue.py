"""Where the time of ONE sequential `await task.enqueue(x)` goes, per store.

    python bench/profile_enqueue.py [--calls 3000] [--rounds 3] [--stores memory,sqlite,
        redis,postgres] [--write]

On uvloop (the loop of the documented install):
1. The whole enqueue, one awaited after another: p50 and mean wall time per call, and the
   process's CPU time per call (every thread, and the background tasks the enqueue leaves
   behind), median of `--rounds`. The headline.
2. The enqueue, its store call (`backend.insert([job])`) and the calls below it, taking turns
   in a shuffled order, so that the machine's drift hits them alike and their differences
   mean something. Below the store call: on Redis `_insert_one_queue`, `run_piped` and the
   bare EVALSHA of the insert script on the pipelined connection, next to a PING on that
   connection, on a raw asyncio Protocol socket (the floor) and through redis-py; on
   PostgreSQL the insert statement on the pool, on a held connection and on one that does
   not wait for the WAL flush, next to `SELECT 1`. Every round trip stores a new job.
3. The in-process parts timeit-style on the same objects: `build_job` (argument binding and
   validation, JSON, id), the store look-up and group commit, the script's arguments and
   their packing (hiredis) or the statement's parameters, SQLite's `_insert` and each of its
   statements (BEGIN IMMEDIATE, INSERT, COMMIT); and `build_job` and what insert_one does once
   the store answered (state, events, handle) also right after a store call, where the
   enqueue runs them (colder caches: these go into the sum).
4. A table per store: component | wall µs | CPU µs | share of the enqueue's p50.

Stores: `memory://`; a SQLite file in a temporary directory; Redis 127.0.0.1:6379 database 14
(`BENCH_REDIS_URL`), its own key prefix; PostgreSQL 127.0.0.1:5432 user postgres database test
(`BENCH_POSTGRES_URL`), its own schema. Prefix and schema are removed afterwards.

`--write` saves the report as bench/ENQUEUE_PROFILE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import timeit
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import sync_api
from common import BENCH_DIR, quiet_logging, run_async
from report import machine
from sync_api import destroy, make_app, store_url

from backburner import Backburner, codec
from backburner.backends.protocol import Inserted, NewJob
from backburner.enqueue import DEFAULT_OPTIONS, build_job, initial_state
from backburner.group_commit import GroupInsert
from backburner.handle import Job
from backburner.ids import new_job_id
from backburner.notify import Event

STORES = ("memory", "sqlite", "redis", "postgres")
# The benchmarks' Redis database (the tests use 15); BENCH_REDIS_URL still wins.
if "BENCH_REDIS_URL" not in os.environ:
    sync_api.REDIS = "redis://127.0.0.1:6379/14"

SUMMED, BELOW, REFERENCE = 0, 1, 2
"""A part of the enqueue (the parts add up to it); a breakdown of the part above it; a
reference figure that is not part of the enqueue (a floor, an older path, a background
cost)."""


@dataclass(frozen=True)
class Counts:
    calls: int = 3000
    """Enqueues per round."""
    rounds: int = 3
    loops: int = 20_000
    """Calls per timeit repeat of an in-process part."""
    samples: int = 2000
    """Calls of each round trip."""


@dataclass(frozen=True)
class Part:
    name: str
    wall_us: float
    cpu_us: float | None
    level: int = SUMMED
    detail: str = ""
    hot_us: float | None = None
    """The same code in a timeit loop, where it is timed right after a store call."""


@dataclass
class StoreProfile:
    store: str
    alone: Timed
    """Sequential enqueues and nothing else: the headline."""
    turns: Timed
    """The enqueue taking turns with its store call and the calls below it: the table's."""
    parts: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summed(self) -> float:
        return sum(p.wall_us for p in self.parts if p.level == SUMMED)


@dataclass(frozen=True)
class Timed:
    p50: float
    mean: float
    cpu: float
    """µs per call: wall p50, wall mean, process CPU mean."""


# -- timing -------------------------------------------------------------------------------
def sync_us(call: Callable[[], object], loops: int, repeat: int = 5) -> float:
    """timeit: the best of `repeat` means of `loops` calls, µs per call."""
    return min(timeit.Timer(call).repeat(repeat, loops)) / loops * 1e6


async def async_us(call: Callable[[], Awaitable[object]], loops: int, repeat: int = 5) -> float:
    """`sync_us` for a coroutine that never waits (it never reaches the loop)."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(loops):
            await call()
        best = min(best, time.perf_counter() - began)
    return best / loops * 1e6


async def sampled(call: Callable[[int], Awaitable[object]], n: int) -> Timed:
    """Each of `n` calls timed alone (wall), and the process CPU over all of them."""
    took = []
    cpu = time.process_time()
    for i in range(n):
        began = time.perf_counter()
        await call(i)
        took.append(time.perf_counter() - began)
    cpu = time.process_time() - cpu
    return Timed(statistics.median(took) * 1e6, sum(took) / n * 1e6, cpu / n * 1e6)


async def interleaved(calls: dict[str, Callable[[int], Awaitable[object]]],
                      n: int) -> dict[str, Timed]:
    """`sampled` of several calls, taking turns (call i of each, in a shuffled order), so a
    change in the machine's load hits them alike and their differences mean something; the
    order is shuffled so that what a call leaves behind (the enqueue's background NOTIFY on
    PostgreSQL) falls on every other call alike. CPU is read around each call (what ran
    meanwhile, a background task, is counted too)."""
    took: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, float] = dict.fromkeys(calls, 0.0)
    order = list(calls.items())
    shuffle = random.Random(14).shuffle
    for i in range(n):
        shuffle(order)
        for name, call in order:
            began, used = time.perf_counter(), time.process_time()
            await call(i)
            cpu[name] += time.process_time() - used
            took[name].append(time.perf_counter() - began)
    return {name: Timed(statistics.median(t) * 1e6, sum(t) / n * 1e6, cpu[name] / n * 1e6)
            for name, t in took.items()}


def fresh_jobs(task: Any, n: int) -> list[NewJob]:
    """Jobs as `task.enqueue(i)` builds them: each store call stores a new id."""
    return [build_job(task, DEFAULT_OPTIONS, (i,), {}) for i in range(n)]


def _each(call: Callable[[NewJob], object], jobs: Iterator[NewJob]) -> None:
    """One call on the next job: timeit's loop over fresh jobs."""
    call(next(jobs))


async def settle() -> None:
    """Let background tasks an enqueue started (event publishers) finish."""
    for _ in range(3):
        await asyncio.sleep(0.01)


# -- the whole enqueue, and the parts every store shares -----------------------------------
async def time_enqueue(app: Backburner, task: Any, counts: Counts) -> tuple[Timed, list[str]]:
    """Sequential enqueues and nothing else, median of the rounds: the headline figure."""
    notes = []
    rounds = []
    senders = 0
    last: object = None  # held, so a new task is never taken for the last one
    notifier = app.backend.notifier
    for _ in range(counts.rounds):
        took = []
        cpu = time.process_time()
        for n in range(counts.calls):
            began = time.perf_counter()
            await task.enqueue(n)
            took.append(time.perf_counter() - began)
            # PostgreSQL's notifier sends job events from a background task (not timed:
            # read between calls), an enqueue's too until its insert statement sent them:
            # how many the sequential enqueues started.
            sender = getattr(notifier, "_sender", None)
            if sender is not None and sender is not last:
                senders, last = senders + 1, sender
        cpu = time.process_time() - cpu
        rounds.append(Timed(statistics.median(took) * 1e6, sum(took) / len(took) * 1e6,
                            cpu / len(took) * 1e6))
        await settle()
    if senders or hasattr(notifier, "sent_by_statement"):  # PostgreSQL: also when none
        notes.append(f"{senders / (counts.calls * counts.rounds):.2f} background "
                     "event-sender tasks started per enqueue (each sends everything queued "
                     "meanwhile in one NOTIFY statement)")
    return Timed(
        statistics.median(r.p50 for r in rounds),
        statistics.median(r.mean for r in rounds),
        statistics.median(r.cpu for r in rounds),
    ), notes


class _Instant:
    """A store that answers at once: around it only the group commit's own cost is left."""

    def __init__(self, answer: list[Inserted]) -> None:
        self.answer = answer

    async def insert(self, jobs: Sequence[NewJob], connection: Any = None) -> list[Inserted]:
        return self.answer


async def right_after(app: Backburner, task: Any, work: Callable[[int], object],
                      n: int) -> tuple[float, float]:
    """p50 µs of `work(i)` run right after a store call, where the enqueue runs it: after
    a round trip the process has slept in epoll while the server ran on these cores, after
    a SQLite commit the kernel has written the WAL, so it runs on colder caches than in a
    timeit loop. And of the same work run again at once (warm again), for comparison."""
    backend = app.backend
    jobs = fresh_jobs(task, n)
    first, again = [], []
    for i in range(n):
        await backend.insert([jobs[i]])
        began = time.perf_counter()
        work(i)
        between = time.perf_counter()
        work(i)
        first.append(between - began)
        again.append(time.perf_counter() - between)
    return statistics.median(first) * 1e6, statistics.median(again) * 1e6


async def shared_parts(kind: str, app: Backburner, task: Any, counts: Counts
                       ) -> tuple[list[Part], Part]:
    """build_job and the path into the store call (before it), the work after it."""
    loops, n = counts.loops, min(counts.samples, 5000)
    build_hot = sync_us(lambda: build_job(task, DEFAULT_OPTIONS, (7,), {}), loops)
    build, build_again = await right_after(
        app, task, lambda i: build_job(task, DEFAULT_OPTIONS, (i,), {}), n)
    signature = task.signature
    encode = sync_us(lambda: signature.encode((7,), {}), loops)
    json_args, json_kwargs = signature.encode((7,), {})
    dumps = sync_us(lambda: (codec.dumps(json_args) if json_args else "[]",
                             codec.dumps(json_kwargs) if json_kwargs else "{}"), loops)
    ids = sync_us(new_job_id, loops)

    # How insert_one finds the running loop's store (loop_store() since d042cbd).
    lookup = sync_us(getattr(app, "loop_store", None) or app._stores.current, loops)
    job = build_job(task, DEFAULT_OPTIONS, (7,), {})
    instant = _Instant([Inserted(job.id)])
    group = GroupInsert(cast(Any, instant))
    jobs = [job]
    wrapped = await async_us(lambda: group.insert(jobs), loops)
    bare = await async_us(lambda: instant.insert(jobs), loops)

    notifier = app.backend.notifier
    instrumentation = app.instrumentation

    def after(job: NewJob) -> None:
        # What insert_one does once the store answered a plain job.
        state = initial_state(job, time.time())
        instrumentation.enqueued_one(notifier, job.id, job.task, job.queue, state.value)
        Job(app, job.id, task, state)

    def marked(batch: list[NewJob]) -> list[NewJob]:
        if kind == "redis":
            # The insert script published these events; the backend marks them so that
            # publish() delivers them in-process only (marking is counted in the store call).
            cast(Any, notifier).sent_by_script([(j.id, 0, ("pending", "scheduled")) for j in batch])
        elif kind == "postgres":
            # The same for the insert statement, which sent them with its pg_notify.
            cast(Any, notifier).sent_by_statement(
                [(j.id, 0, ("pending", "scheduled")) for j in batch]
            )
        return batch

    best = float("inf")
    for _ in range(5):  # Redis keeps at most 10,000 marks: n <= 5,000
        batch = marked(fresh_jobs(task, n))
        best = min(best, timeit.Timer(partial(_each, after, iter(batch))).timeit(n))
        await settle()
    after_hot = best / n * 1e6
    batch = marked(fresh_jobs(task, 2 * n))
    fresh = iter(batch)  # the second run of each pair takes a job of its own
    after_us, _ = await right_after(app, task, lambda i: after(next(fresh)), n)
    await settle()
    events = {
        "memory": "in-process delivery only",
        "sqlite": "wake-up and job event as datagrams to listening processes (none here)",
        "redis": "delivered in-process only: the insert script published them",
        "postgres": "delivered in-process only: the insert statement sent them",
    }[kind]
    hot = "right after a store call, as in the enqueue (in a timeit loop: {:.1f} µs)"
    return [
        Part("build_job (bind, check, JSON, id)", build, build, detail=hot.format(build_hot),
             hot_us=build_hot),
        Part("build_job again, at once after that first one", build_again, build_again,
             REFERENCE, "the same code with its caches warm again"),
        Part("signature.encode (binding, validation)", encode, encode, BELOW, "timeit"),
        Part("JSON encoding (codec.dumps)", dumps, dumps, BELOW, "timeit"),
        Part("new_job_id", ids, ids, BELOW, "timeit"),
        Part("store look-up + group commit", lookup + wrapped - bare, lookup + wrapped - bare,
             detail=f"timeit: the loop's store {lookup:.2f} µs; GroupInsert.insert around a "
             f"store that answers at once {wrapped - bare:.2f} µs"),
    ], Part("after the store answered (state, events, handle)", after_us, after_us,
            detail=f"{events}; {hot.format(after_hot)}", hot_us=after_hot)


Turns = dict[str, Callable[[int], Awaitable[object]]]


def base_turns(app: Backburner, task: Any, n: int) -> Turns:
    """The enqueue and the store call alone, taking turns."""
    backend = app.backend
    jobs = fresh_jobs(task, n)
    return {"enqueue": lambda i: task.enqueue(i), "insert": lambda i: backend.insert([jobs[i]])}


# -- below the store call, per store --------------------------------------------------------
Below = tuple[dict[str, Timed], list[Part], list[str]]
"""The turns' timings, the parts below the store call, notes."""


async def memory_parts(app: Backburner, task: Any, counts: Counts) -> Below:
    timed = await interleaved(base_turns(app, task, counts.samples), counts.samples)
    call = timed["insert"]
    return timed, [Part("store call: backend.insert([job])", call.p50, call.cpu,
                        detail="dicts in this process")], []


class _TimedStatements:
    """A sqlite3 connection that times each statement run on it, by its first word."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.took: dict[str, list[float]] = defaultdict(list)

    def _timed(self, method: Callable[..., Any], sql: str, *args: Any) -> Any:
        began = time.perf_counter()
        try:
            return method(sql, *args)
        finally:
            self.took[sql.split(None, 1)[0].upper()].append(time.perf_counter() - began)

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self.conn.execute, sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self.conn.executemany, sql, *args)

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)

    def rollback(self) -> None:
        self.conn.rollback()


async def sqlite_parts(app: Backburner, task: Any, counts: Counts) -> Below:
    from backburner.backends.sqlite.backend import _insert

    timed = await interleaved(base_turns(app, task, counts.samples), counts.samples)
    call = timed["insert"]
    db = cast(Any, app.backend)._db
    conn = db._fast_connection()  # the loop thread's connection, as SQLiteConnection.run
    parts = [Part("store call: backend.insert([job])", call.p50, call.cpu,
                  detail="on the event loop's thread; no thread hop unless the file is locked")]
    if conn is None:
        return timed, parts, ["the loop thread has no connection of its own"]
    # Called straight on the connection these skip SQLiteConnection's checkpoint count;
    # their few thousand rows only lengthen the WAL until the next checkpoint.
    timer = _TimedStatements(conn)
    for job in fresh_jobs(task, counts.samples):
        _insert(timer, [job])
    median = {word: statistics.median(t) * 1e6 for word, t in timer.took.items()}
    whole = sync_us(partial(_each, lambda job: _insert(conn, [job]),
                            iter(fresh_jobs(task, counts.samples))), counts.samples // 5)
    parts.append(Part("_insert on the loop thread's connection", whole, whole, BELOW,
                      "timeit: the row's dict and three statements"))
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    for word, label in (("BEGIN", "BEGIN IMMEDIATE (takes the write lock)"),
                        ("INSERT", "INSERT of the row (executemany)"),
                        ("COMMIT", "COMMIT")):
        if word in median:
            detail = "p50 of each statement as _insert runs it"
            if word == "COMMIT":
                detail += (f"; journal_mode={journal}, synchronous={synchronous} (1 = NORMAL: "
                           "no fsync per commit in WAL mode, the WAL is written to the page "
                           "cache)")
            parts.append(Part(label, median[word], median[word], BELOW, detail))
    return timed, parts, []


class _Ping(asyncio.Protocol):
    """The least a client can do for a Redis round trip: write PING, wait for +PONG."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)  # "+PONG\r\n" arrives in one segment

    async def ping(self) -> bytes:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"*1\r\n$4\r\nPING\r\n")
        return await self.waiter


async def server_time(client: Any, call: Callable[[int], Awaitable[object]],
                      n: int) -> tuple[float, float] | None:
    """Redis's own time per call of `n` EVALSHA calls in a row, from INFO commandstats: the
    script's (commands it ran included) and the commands the script ran. None when other
    clients ran scripts meanwhile (the counters are the server's)."""
    before = await client.info("commandstats")
    for i in range(n):
        await call(i)
    after = await client.info("commandstats")

    def delta(name: str, field: str) -> float:
        return float(after.get(name, {}).get(field, 0) - before.get(name, {}).get(field, 0))

    if delta("cmdstat_evalsha", "calls") != n:
        return None
    inner = sum(delta(name, "usec") for name in after
                if name not in ("cmdstat_evalsha", "cmdstat_info"))
    return delta("cmdstat_evalsha", "usec") / n, inner / n


async def redis_parts(app: Backburner, task: Any, counts: Counts) -> Below:
    from backburner.backends.redis import rows, wire
    from backburner.backends.redis.backend import SCRIPTS
    from backburner.backends.redis.scripts import Call, Script, _evalsha_args

    backend = cast(Any, app.backend)
    client, pipe, notifier = backend._client, backend._pipe, backend.notifier
    loops, n = counts.loops, counts.samples
    turns = base_turns(app, task, n)
    if pipe is None:
        timed = await interleaved(turns, n)
        call = timed["insert"]
        return timed, [Part("store call: backend.insert([job])", call.p50, call.cpu)], [
            "no pipelined connection (hiredis missing?): script calls go through redis-py"]

    def script_call(job: NewJob) -> Call:
        # The call backend._insert_one_queue makes for one job.
        q = backend.keys.queue(job.queue)
        return Call(
            SCRIPTS["insert"], (q.script_keys[0], *backend.keys.global_keys[:2]),
            (q.base, job.queue, *backend._insert_head(job.queue, reserving=True),
             *rows.insert_args([job])),
        )

    job = build_job(task, DEFAULT_OPTIONS, (7,), {})
    arguments = sync_us(lambda: script_call(job), loops)
    one = script_call(job)
    packing = sync_us(lambda: wire.pack(_evalsha_args(one)), loops)
    mark = sync_us(lambda: notifier.sent_by_script([(job.id, 0, ("pending", "scheduled"))]),
                   loops)
    await settle()

    direct = fresh_jobs(task, n)
    calls = [script_call(j) for j in fresh_jobs(task, n)]
    packed = [wire.pack(_evalsha_args(script_call(j))) for j in fresh_jobs(task, n)]
    # The insert script's prelude (lua/_queue.lua: what every queue script runs first) with
    # nothing after it, called with an insert's keys and arguments.
    insert_script = SCRIPTS["insert"]
    prelude_text = insert_script.text.split("\n-- insert.lua", 1)[0] + "\nreturn 1"
    prelude = Script("prelude", prelude_text, await client.script_load(prelude_text))
    prelude_only = [wire.pack(_evalsha_args(replace(script_call(j), script=prelude)))
                    for j in fresh_jobs(task, n)]
    ping = wire.pack(("PING",))
    options = client.connection_pool.connection_kwargs
    transport, raw = await asyncio.get_running_loop().create_connection(
        _Ping, options.get("host", "127.0.0.1"), options.get("port", 6379))
    try:
        timed = await interleaved({
            **turns,
            "one queue": lambda i: backend._insert_one_queue(client, [direct[i]]),
            "run_piped": lambda i: SCRIPTS.run_piped(pipe, client, calls[i]),
            "evalsha": lambda i: pipe.call(packed[i]),
            "prelude": lambda i: pipe.call(prelude_only[i]),
            "piped ping": lambda i: pipe.call(ping),
            "raw ping": lambda i: raw.ping(),
            "redis-py ping": lambda i: client.ping(),
        }, n)
    finally:
        transport.close()
    more = fresh_jobs(task, n)
    script = await server_time(client, lambda i: pipe.call(
        wire.pack(_evalsha_args(script_call(more[i])))), n)
    bare = await server_time(client, lambda i: pipe.call(prelude_only[i]), n)
    if script is None or bare is None:
        server = "server time not shown: other clients ran scripts meanwhile"
    else:
        server = (f"Redis ran the script in {script[0]:.1f} µs: the commands it calls "
                  f"{script[1]:.1f} µs, its prelude with the arguments {bare[0]:.1f} µs "
                  "(INFO commandstats, a loop of its own)")
    call, evalsha = timed["insert"], timed["evalsha"]
    one_queue, piped_call = timed["one queue"], timed["run_piped"]
    piped, floor, old = timed["piped ping"], timed["raw ping"], timed["redis-py ping"]
    bare_call = timed["prelude"]
    return timed, [
        Part("store call: backend.insert([job])", call.p50, call.cpu,
             detail="one EVALSHA (lua/insert.lua, reserving the id too)"),
        Part("backend._insert_one_queue (called directly)", one_queue.p50, one_queue.cpu,
             BELOW, f"insert's wrapper and dispatch: {call.p50 - one_queue.p50:.1f} µs "
             "(difference)"),
        Part("script arguments (keys, rows.insert_args, Call)", arguments, arguments, BELOW,
             "timeit"),
        Part("SCRIPTS.run_piped (packs, then the call)", piped_call.p50, piped_call.cpu, BELOW,
             f"the reply's Inserted, _remember and the rest: "
             f"{one_queue.p50 - piped_call.p50 - arguments - mark:.1f} µs (difference)"),
        Part("packing the command (hiredis.pack_command)", packing, packing, BELOW, "timeit"),
        Part("EVALSHA round trip, pipelined connection", evalsha.p50, evalsha.cpu, BELOW,
             server),
        Part("marking the events the script published", mark, mark, BELOW,
             "timeit: RedisNotifier.sent_by_script"),
        Part("EVALSHA of the script's prelude alone, same arguments", bare_call.p50,
             bare_call.cpu, REFERENCE,
             f"the insert's own body: {evalsha.p50 - bare_call.p50:.1f} µs (difference); "
             "lua/_queue.lua with `return 1` after it"),
        Part("PING, pipelined connection", piped.p50, piped.cpu, REFERENCE,
             f"EVALSHA - PING on it: {evalsha.p50 - piped.p50:.1f} µs (the script, ~1 KB "
             "of arguments)"),
        Part("PING, raw asyncio Protocol socket (the floor)", floor.p50, floor.cpu,
             REFERENCE, "no parser: write 14 bytes, wait for +PONG"),
        Part("PING, redis-py `await client.ping()`", old.p50, old.cpu, REFERENCE,
             "the path script calls took before pipelined.py"),
    ], []


async def postgres_parts(app: Backburner, task: Any, counts: Counts) -> Below:
    from backburner.backends.postgres import connections
    from backburner.backends.postgres.backend import _columns, _limits_and_meta

    backend = cast(Any, app.backend)
    pool, notifier, query = backend._pool, backend.notifier, backend._q["insert_jobs"]
    loops, n = counts.loops, counts.samples

    def arguments(jobs: list[NewJob]) -> tuple[Any, ...]:
        # The parameters backend.insert passes for plain jobs (the jobs' events last).
        events = notifier.statement_events((j.queue, j.id, j.task) for j in jobs)
        return (*_columns(jobs), backend._wakeup, notifier.origin, *_limits_and_meta(jobs),
                *events)

    job = build_job(task, DEFAULT_OPTIONS, (7,), {})
    building = sync_us(lambda: arguments([job]), loops)
    params = {name: [arguments([j]) for j in fresh_jobs(task, n)]
              for name in ("pool", "held", "no flush")}
    # A connection of its own, outside the pool, that does not wait for the WAL flush.
    unflushed = await connections.connect(backend.config, "bench")
    await unflushed.execute("SET synchronous_commit = off")
    try:
        async with pool.acquire() as conn:
            settings = {name: await conn.fetchval(f"SHOW {name}") for name in (
                "synchronous_commit", "fsync", "wal_sync_method", "server_version")}
            timed = await interleaved({
                **base_turns(app, task, n),
                "pool": lambda i: pool.execute(query, *params["pool"][i]),
                "held": lambda i: conn.execute(query, *params["held"][i]),
                "no flush": lambda i: unflushed.execute(query, *params["no flush"][i]),
                "select": lambda i: conn.fetchval("SELECT 1"),
                "pool select": lambda i: pool.fetchval("SELECT 1"),
            }, n)
    finally:
        await unflushed.close()
    await settle()
    events = fresh_jobs(task, n)

    async def job_event(i: int) -> None:
        # insert_one's job event, sent as the enqueue leaves it: by a background task.
        j = events[i]
        notifier.publish([Event("job", j.queue, j.id, j.task, "pending", 0, None)])
        sender = notifier._sender
        if sender is not None:
            await sender

    event = await sampled(job_event, n)
    call, on_pool, held, no_flush = (timed[k] for k in ("insert", "pool", "held", "no flush"))
    select, pool_select = timed["select"], timed["pool select"]
    return timed, [
        Part("store call: backend.insert([job])", call.p50, call.cpu,
             detail="one statement: insert_jobs (INSERT ... RETURNING, pg_notify); "
             f"error translation wrapper and Inserted: {call.p50 - on_pool.p50 - building:.1f}"
             " µs (difference)"),
        Part("statement parameters (_columns, _limits_and_meta)", building, building, BELOW,
             "timeit"),
        Part("insert statement, pool.execute", on_pool.p50, on_pool.cpu, BELOW,
             "take a pooled connection, run the prepared statement, give it back"),
        Part("insert statement, held connection", held.p50, held.cpu, BELOW,
             f"pool acquire + release: {on_pool.p50 - held.p50:.1f} µs"),
        Part("same, synchronous_commit=off", no_flush.p50, no_flush.cpu, BELOW,
             f"waiting for the WAL flush at commit: {held.p50 - no_flush.p50:.1f} µs "
             f"(fsync={settings['fsync']}, wal_sync_method={settings['wal_sync_method']})"),
        Part("SELECT 1, held connection (the floor)", select.p50, select.cpu, REFERENCE,
             f"insert - SELECT 1: {held.p50 - select.p50:.1f} µs (the row, its indexes, "
             "pg_notify, the commit)"),
        Part("SELECT 1, pool.fetchval", pool_select.p50, pool_select.cpu, REFERENCE),
        Part("a job event's background NOTIFY (not an enqueue's)", event.p50, event.cpu,
             REFERENCE, "publish, then await the sender task: a second statement on a "
                        "pooled connection, what each enqueue's event cost before the insert "
                        "statement sent it"),
    ], [f"PostgreSQL {settings['server_version']}, synchronous_commit="
        f"{settings['synchronous_commit']}"]


BELOW_THE_CALL = {"memory": memory_parts, "sqlite": sqlite_parts, "redis": redis_parts,
                  "postgres": postgres_parts}


# -- one store ------------------------------------------------------------------------------
async def profile_store(kind: str, directory: str, counts: Counts) -> StoreProfile:
    url = "memory://" if kind == "memory" else store_url(kind, directory)
    app = make_app(url)
    task = app.get_task("noop")
    try:
        for n in range(200):  # open, connect, migrate, prepare statements, warm caches
            await task.enqueue(n)
        await settle()
        alone, notes = await time_enqueue(app, task, counts)
        before, after = await shared_parts(kind, app, task, counts)
        timed, below, more = await BELOW_THE_CALL[kind](app, task, counts)
        await settle()
    finally:
        await destroy(app)
    return StoreProfile(kind, alone, timed["enqueue"], [*before, *below, after],
                        notes + more)


def run_store(kind: str, directory: str, counts: Counts) -> StoreProfile:
    return run_async(lambda: profile_store(kind, directory, counts), "uvloop")


# -- the report -----------------------------------------------------------------------------
NAMES = {"memory": "memory://", "sqlite": "SQLite (file)", "redis": "Redis",
         "postgres": "PostgreSQL"}


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def store_table(p: StoreProfile) -> list[str]:
    whole = p.turns.p50
    rest = whole - p.summed()
    lines = [
        f"### {NAMES[p.store]}",
        "",
        f"One `await task.enqueue(x)` after another: **{p.alone.p50:.1f} µs** wall p50 "
        f"(mean {p.alone.mean:.1f}), **{p.alone.cpu:.1f} µs** of process CPU per call. "
        f"Taking turns with the calls of the table (each figure below is from those turns): "
        f"{whole:.1f} µs p50, {p.turns.cpu:.1f} µs CPU.",
        "",
        "| Component | wall µs | CPU µs | share of the enqueue | note |",
        "|---|---:|---:|---:|---|",
        f"| **the whole enqueue (p50)** | {whole:.1f} | {p.turns.cpu:.1f} | 100% | "
        "taking turns with the calls below |",
    ]
    for part in p.parts:
        if part.level == REFERENCE:
            continue
        name = part.name if part.level == SUMMED else f"&nbsp;&nbsp;↳ {part.name}"
        lines.append(f"| {name} | {part.wall_us:.1f} | {_us(part.cpu_us)} | "
                     f"{part.wall_us / whole:.0%} | {part.detail} |")
    lines.append(f"| rest (difference) | {rest:.1f} | — | {rest / whole:.0%} | the awaits "
                 "and coroutine frames between the parts, loop steps, noise |")
    references = [part for part in p.parts if part.level == REFERENCE]
    if references:
        lines += ["", "Not part of the enqueue, for comparison:", "",
                  "| Reference | wall µs | CPU µs | vs the enqueue | note |",
                  "|---|---:|---:|---:|---|"]
        lines += [f"| {r.name} | {r.wall_us:.1f} | {_us(r.cpu_us)} | "
                  f"{r.wall_us / whole:.0%} | {r.detail} |" for r in references]
    lines += ["", *(f"- {note}" for note in p.notes), ""] if p.notes else [""]
    lines += [explain(p), ""]
    return lines


def _part(p: StoreProfile, start: str) -> Part | None:
    return next((x for x in p.parts if x.name.startswith(start)), None)


def explain(p: StoreProfile) -> str:
    """A few sentences from the figures (kept to what the figures show)."""
    whole = p.turns.p50
    call = _part(p, "store call")
    store = call.wall_us if call is not None else 0.0
    around = whole - store
    parts = p.summed() - store
    text = (f"The store call is {store:.1f} µs ({store / whole:.0%}); the enqueue spends "
            f"{around:.1f} µs ({around / whole:.0%}) in process around it, of which the "
            f"parts measured account for {parts:.1f} µs.")
    situ = [x for x in p.parts if x.hot_us is not None]
    if situ:
        text += (f" build_job and the work after the store call take "
                 f"{sum(x.wall_us for x in situ):.1f} µs right after a store call, "
                 f"{sum(x.hot_us or 0.0 for x in situ):.1f} µs in a timeit loop.")
    if p.store == "redis":
        evalsha = _part(p, "EVALSHA round trip")
        floor = _part(p, "PING, raw")
        old = _part(p, "PING, redis-py")
        if evalsha and floor and old:
            text += (f" The EVALSHA round trip is {evalsha.wall_us:.1f} µs against "
                     f"{floor.wall_us:.1f} µs for the barest PING this loop can do; "
                     f"redis-py's own ping takes {old.wall_us:.1f} µs.")
    elif p.store == "postgres":
        held = _part(p, "insert statement, held")
        floor = _part(p, "SELECT 1, held")
        flush = _part(p, "same, synchronous_commit=off")
        if held and floor and flush:
            text += (f" The statement alone is {held.wall_us:.1f} µs on a held connection, "
                     f"{flush.wall_us:.1f} µs without waiting for the WAL flush, against "
                     f"{floor.wall_us:.1f} µs for SELECT 1.")
    elif p.store == "sqlite":
        commit = _part(p, "COMMIT")
        if commit:
            text += f" COMMIT is {commit.wall_us:.1f} µs of it."
    return text


def versions() -> dict[str, str]:
    import asyncpg
    import hiredis
    import redis
    import uvloop

    return {"uvloop": uvloop.__version__, "redis-py": redis.__version__,
            "hiredis": hiredis.__version__, "asyncpg": asyncpg.__version__}


def build_report(profiles: Sequence[StoreProfile], counts: Counts, command: str,
                 load_before: float, load_after: float) -> str:
    described = {k: v for k, v in machine().items() if k != "Huey"}
    described["Load average (1 min)"] = f"{load_before:.2f} before, {load_after:.2f} after"
    described["Event loop"] = f"uvloop ({platform.python_implementation()})"
    described.update(versions())
    summary = ["| Store | enqueue p50 µs | CPU µs/call | in turns: enqueue | its store call "
               "| in process around it |", "|---|---:|---:|---:|---:|---:|"]
    for p in profiles:
        call = _part(p, "store call")
        store = call.wall_us if call is not None else 0.0
        summary.append(f"| {NAMES[p.store]} | {p.alone.p50:.1f} | {p.alone.cpu:.1f} | "
                       f"{p.turns.p50:.1f} | {store:.1f} | {p.turns.p50 - store:.1f} |")
    return "\n".join([
        "# Where one enqueue's time goes",
        "",
        f"Command: `{command}`",
        "",
        *(f"- **{k}**: {v}" for k, v in described.items()),
        "",
        f"Method. (1) `await task.enqueue(n)` one after another, {counts.calls:,} per round, "
        f"median of {counts.rounds} rounds, a task taking one int, on uvloop: the headline "
        "(first two columns below). (2) The enqueue, its store call "
        "(`backend.insert([job])`) and the calls below it (bare round trips on the same "
        f"connections) taking turns, one of each per turn in a shuffled order, "
        f"{counts.samples:,} turns: so the machine's drift hits them alike and their "
        "differences mean something; every round trip stores a new job as the enqueue does "
        "(the two CPU-clock reads around each call add ~1 µs to each alike). "
        "(3) In-process parts timeit-style (best of 5 means of up to "
        f"{counts.loops:,} calls), and build_job and the work after the store call also timed "
        "right after a store call, where the enqueue runs them (the cache is colder there: "
        "those figures go into the sum). CPU is the process's (all threads, and what ran "
        "during a call's await) per call. Shares are of the enqueue's p50 in the turns; the "
        "`rest` row is what the parts leave unexplained (negative when parts measured alone "
        "ran slower than inside the enqueue: noise of a shared machine). p50s do not add up "
        "exactly: read the rows as estimates to a few µs.",
        "",
        *summary,
        "",
        *(line for p in profiles for line in store_table(p)),
    ])


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=Counts.calls)
    parser.add_argument("--rounds", type=int, default=Counts.rounds)
    parser.add_argument("--loops", type=int, default=Counts.loops)
    parser.add_argument("--samples", type=int, default=Counts.samples)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--write", action="store_true", help="write bench/ENQUEUE_PROFILE.md")
    args = parser.parse_args(argv)
    stores = [s for s in args.stores.split(",") if s]
    unknown = set(stores) - set(STORES)
    if unknown:
        parser.error(f"unknown store(s) {sorted(unknown)}; known: {', '.join(STORES)}")
    counts = Counts(args.calls, args.rounds, args.loops, args.samples)
    quiet_logging()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bb-enqueue-") as directory:
        profiles = [run_store(kind, directory, counts) for kind in stores]
    command = "python bench/profile_enqueue.py " + " ".join(argv or sys.argv[1:])
    text = build_report(profiles, counts, command.strip(), load_before, os.getloadavg()[0])
    print(text)
    if args.write:
        (BENCH_DIR / "ENQUEUE_PROFILE.md").write_text(text + "\n")
        print(f"wrote {BENCH_DIR / 'ENQUEUE_PROFILE.md'}", file=sys.stderr)
    return text


if __name__ == "__main__":
    main()
