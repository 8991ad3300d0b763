"""The history harness of the reliability tests (see docs/reliability.md, "How it is tested").

Worker side: task functions call `attempt_scope(ctx)` (and `write_progress`), which append
one JSON line per event to the history file named by RELIABILITY_HISTORY. The file is opened
with O_APPEND and every line is written with a single `write` shorter than PIPE_BUF, so lines
from many processes and threads never interleave.

Test side: `WorkerPool` runs real `python -m backburner worker` processes and remembers when
it killed or stopped which pid; `load_history` + `check` turn the history and the job records
into a `Verdict`: lost, duplicates, overlap, stale writes, double claims, rerun delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from clock_skew import SKEW_ENV
from services import backend_url

from backburner import Backburner, JobContext, JobRecord, JobState, LeaseLostError
from backburner.backends.sqlite.datagrams import socket_directory

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
HISTORY_ENV = "RELIABILITY_HISTORY"
DB_ENV = "RELIABILITY_DB"
MARKER_ENV = "RELIABILITY_MARKER"
TERMINAL = ("completed", "failed", "cancelled")

# -- recording (runs inside the worker processes) --------------------------------------------

_history_fd: tuple[int, int] | None = None  # (pid, fd): never reuse a descriptor across fork


def record(event: str, job_id: str, attempt: int, **extra: Any) -> None:
    """Append one event of one attempt to the history file (no-op when none is configured)."""
    global _history_fd
    path = os.environ.get(HISTORY_ENV)
    if not path:
        return
    if _history_fd is None or _history_fd[0] != os.getpid():
        _history_fd = (os.getpid(), os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    line = json.dumps(
        {
            "ev": event, "job": job_id, "att": attempt, "pid": os.getpid(),
            "mono": time.monotonic(), "wall": time.time(), **extra,
        },
        separators=(",", ":"),
    ).encode() + b"\n"
    assert len(line) < select.PIPE_BUF, "a history line must be written atomically"
    os.write(_history_fd[1], line)


@contextlib.contextmanager
def attempt_scope(ctx: JobContext) -> Iterator[None]:
    """Record the start and the end (with its outcome) of one attempt."""
    record("start", ctx.job_id, ctx.attempt)
    outcome = "ok"
    try:
        yield
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    except LeaseLostError:
        outcome = "lease_lost"
        raise
    except BaseException as exc:
        outcome = f"error:{type(exc).__name__}"
        raise
    finally:
        record("end", ctx.job_id, ctx.attempt, out=outcome)


async def write_progress(ctx: JobContext, current: float, total: float) -> None:
    """`ctx.progress` tagged with this attempt, recording whether the store accepted it."""
    issued = time.monotonic()
    try:
        stored = await ctx.progress(current, total, message=f"{os.getpid()}:{ctx.attempt}")
    except LeaseLostError:
        record("write", ctx.job_id, ctx.attempt, issued=issued, ok=False)
        raise
    # Not stored (the store was unreachable, e.g. a connect that timed out while the
    # process was paused) is not accepted either.
    record("write", ctx.job_id, ctx.attempt, issued=issued, ok=stored)


def attempt_result(ctx: JobContext) -> dict[str, int]:
    """What the tasks return: who produced the result (checked against the job record)."""
    return {"attempt": ctx.attempt, "pid": os.getpid()}


# -- reading the history ---------------------------------------------------------------------


@dataclass(slots=True)
class Write:
    issued: float
    ok: bool


@dataclass(slots=True)
class Attempt:
    job: str
    attempt: int
    pid: int
    start: float
    """Monotonic (CLOCK_MONOTONIC is system-wide on Linux, so comparable across processes)."""
    start_wall: float
    end: float | None = None
    end_wall: float | None = None
    outcome: str | None = None
    writes: list[Write] = field(default_factory=list)


@dataclass(slots=True)
class History:
    attempts: dict[str, dict[int, Attempt]]
    double_starts: list[tuple[str, int]]
    """(job, attempt) pairs started more than once: one fencing token handed out twice."""

    def of(self, job_id: str) -> list[Attempt]:
        return sorted(self.attempts.get(job_id, {}).values(), key=lambda a: a.attempt)

    @property
    def starts(self) -> int:
        return sum(len(v) for v in self.attempts.values())


def load_history(path: Path) -> History:
    attempts: dict[str, dict[int, Attempt]] = {}
    double: list[tuple[str, int]] = []
    if not path.exists():
        return History(attempts, double)
    text = path.read_text()
    # A worker may be half-way through appending a line: the page cache lets a reader see the
    # first bytes of a write (a CI run read '{"'). Only lines ended by their newline count.
    complete = text[: text.rfind("\n") + 1]
    for raw in complete.splitlines():
        e = json.loads(raw)
        job, number = e["job"], e["att"]
        per_job = attempts.setdefault(job, {})
        if e["ev"] == "start":
            if number in per_job:
                double.append((job, number))
                continue
            per_job[number] = Attempt(job, number, e["pid"], e["mono"], e["wall"])
            continue
        found = per_job.get(number)
        if found is None:
            continue
        if e["ev"] == "end":
            found.end, found.end_wall, found.outcome = e["mono"], e["wall"], e["out"]
        elif e["ev"] == "write":
            found.writes.append(Write(e["issued"], e["ok"]))
    return History(attempts, double)


# -- checking --------------------------------------------------------------------------------


@dataclass(slots=True)
class Verdict:
    jobs: int
    completed: int
    lost: list[str]
    """Accepted jobs that did not end `completed` (when completion was expected)."""
    never_ran: list[str]
    """Completed jobs without any attempt that returned normally in the history."""
    duplicates: int
    """Attempts that returned normally beyond one per job."""
    unexplained_duplicates: list[tuple[str, int]]
    """Superseded attempts that returned normally on a worker that did not die."""
    unexplained_reruns: list[tuple[str, int]]
    """Superseded attempts that neither ended nor died with their worker."""
    overlaps: list[tuple[str, int, float]]
    """(job, later attempt, seconds it started before the previous one ended or died)."""
    stale_writes: list[str]
    double_claims: list[tuple[str, int]]
    rerun_delays: list[float]
    """Death of the worker -> start of the next attempt, for attempts lost with a worker."""

    @property
    def max_rerun_delay(self) -> float | None:
        return max(self.rerun_delays) if self.rerun_delays else None

    def summary(self) -> str:
        delay = self.max_rerun_delay
        return (
            f"jobs={self.jobs} completed={self.completed} lost={len(self.lost)} "
            f"never_ran={len(self.never_ran)} duplicates={self.duplicates} "
            f"unexplained_duplicates={len(self.unexplained_duplicates)} "
            f"unexplained_reruns={len(self.unexplained_reruns)} overlap={len(self.overlaps)} "
            f"stale_writes={len(self.stale_writes)} double_claims={len(self.double_claims)} "
            f"reruns_after_death={len(self.rerun_delays)} "
            f"max_rerun_delay={'n/a' if delay is None else f'{delay:.2f}s'}"
        )


def check(
    history: History,
    records: Mapping[str, JobRecord | None],
    *,
    died: Mapping[int, float],
    expect_completed: bool = True,
) -> Verdict:
    """Judge a run. `records`: every accepted job id and its final record; `died`: pid ->
    monotonic time at which that worker process was killed (or exited)."""
    lost: list[str] = []
    never_ran: list[str] = []
    duplicates = 0
    unexplained_dups: list[tuple[str, int]] = []
    unexplained: list[tuple[str, int]] = []
    overlaps: list[tuple[str, int, float]] = []
    stale: list[str] = []
    delays: list[float] = []
    completed = 0
    for job_id, rec in records.items():
        attempts = history.of(job_id)
        if rec is None or (expect_completed and rec.state is not JobState.COMPLETED):
            lost.append(job_id)
        oks = [a for a in attempts if a.outcome == "ok"]
        duplicates += max(0, len(oks) - 1)
        if rec is not None:
            unexplained_dups.extend(
                (job_id, a.attempt) for a in oks if a.attempt != rec.attempt and a.pid not in died
            )
        if rec is not None and rec.state is JobState.COMPLETED:
            completed += 1
            if not oks:
                never_ran.append(job_id)
            stale.extend(_stale_result(job_id, rec, attempts))
        for before, after in itertools.pairwise(attempts):
            end = before.end
            death = died.get(before.pid)
            if end is None and death is not None:
                end = death
                delays.append(after.start - death)
            if end is None:
                unexplained.append((job_id, before.attempt))
                continue
            if after.start < end:
                overlaps.append((job_id, after.attempt, end - after.start))
            # A write issued after a newer attempt was claimed must have been refused.
            stale.extend(
                f"{job_id}: attempt {before.attempt} wrote progress after attempt "
                f"{after.attempt} started"
                for w in before.writes
                if w.ok and w.issued > after.start
            )
    return Verdict(
        jobs=len(records), completed=completed, lost=lost, never_ran=never_ran,
        duplicates=duplicates, unexplained_duplicates=unexplained_dups,
        unexplained_reruns=unexplained, overlaps=overlaps,
        stale_writes=stale, double_claims=list(history.double_starts), rerun_delays=delays,
    )


def _stale_result(job_id: str, rec: JobRecord, attempts: Sequence[Attempt]) -> list[str]:
    result = rec.result
    if not isinstance(result, dict) or "attempt" not in result:
        return []  # a task that does not tag its result
    problems = []
    if result["attempt"] != rec.attempt:
        problems.append(
            f"{job_id}: result of attempt {result['attempt']} stored, owner is {rec.attempt}"
        )
    producer = next((a for a in attempts if a.attempt == result["attempt"]), None)
    if producer is not None and producer.pid != result.get("pid"):
        problems.append(f"{job_id}: result pid {result.get('pid')} != attempt's {producer.pid}")
    if rec.progress is not None and rec.progress.message:
        _, _, progress_attempt = rec.progress.message.partition(":")
        if int(progress_attempt) > rec.attempt:
            problems.append(f"{job_id}: progress from attempt {progress_attempt} > {rec.attempt}")
    return problems


# -- worker processes ------------------------------------------------------------------------

_FLAGS = {
    "concurrency": "--concurrency", "lease": "--lease", "grace": "--grace",
    "max_lost": "--max-lost", "batch_size": "--batch-size", "poll_interval": "--poll-interval",
    "queue": "--queue",
}


@dataclass(slots=True)
class WorkerProcess:
    index: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float
    options: dict[str, Any]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class WorkerPool:
    """Real worker processes (`python -m backburner worker rel_app:app ...`), each with its
    output in its own log file; every one started stays in `workers`."""

    def __init__(self, directory: Path, env: Mapping[str, str]) -> None:
        self.directory = directory
        self.env = dict(env)
        self.workers: list[WorkerProcess] = []
        self.killed: dict[int, float] = {}
        """pid -> monotonic time of the SIGKILL sent by the test."""
        self.stopped: dict[int, float] = {}
        """pid -> monotonic time of the SIGSTOP sent by the test."""
        self._replaced: set[int] = set()

    @staticmethod
    def command(**options: Any) -> list[str]:
        """`app` (default `rel_app:app`) is the app to load; `skew` (seconds) starts the
        worker through `clock_skew`, whose wall clock is that far off; the rest are flags."""
        app = options.pop("app", "rel_app:app")
        entry = "clock_skew" if options.pop("skew", None) else "backburner"
        cmd = [sys.executable, "-m", entry, "--log-level", "WARNING", "worker", app]
        for name, value in options.items():
            if name == "burst":
                if value:
                    cmd.append("--burst")
            elif value is not None:
                cmd += [_FLAGS[name], str(value)]
        return cmd

    def start(self, count: int = 1, **options: Any) -> list[WorkerProcess]:
        started = []
        for _ in range(count):
            index = len(self.workers)
            log_path = self.directory / f"worker-{index}.log"
            skew = options.get("skew")
            env = {**self.env, SKEW_ENV: str(skew)} if skew else self.env
            with log_path.open("wb") as log:
                popen = subprocess.Popen(
                    self.command(**options), cwd=HERE, env=env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            # Poison tests abort workers on purpose: no core files.
            with contextlib.suppress(OSError):
                resource.prlimit(popen.pid, resource.RLIMIT_CORE, (0, 0))
            worker = WorkerProcess(index, popen, log_path, time.monotonic(), options)
            self.workers.append(worker)
            started.append(worker)
        return started

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive()]

    def kill(self, worker: WorkerProcess) -> None:
        self.killed[worker.pid] = time.monotonic()
        worker.popen.send_signal(signal.SIGKILL)
        worker.popen.wait(10)

    def pause(self, worker: WorkerProcess) -> None:
        self.stopped[worker.pid] = time.monotonic()
        worker.popen.send_signal(signal.SIGSTOP)

    def resume(self, worker: WorkerProcess) -> None:
        worker.popen.send_signal(signal.SIGCONT)

    def respawn_dead(self) -> list[WorkerProcess]:
        """Start a replacement, with the same options, for every worker that exited (what a
        supervisor would do)."""
        dead = [w for w in self.workers if w.index not in self._replaced and not w.alive()]
        self._replaced.update(w.index for w in dead)
        return [new for w in dead for new in self.start(1, **w.options)]

    def stop_all(self, timeout: float = 20.0) -> dict[int, int | None]:
        """SIGTERM every live worker and wait; SIGKILL what did not exit. pid -> exit code."""
        for w in self.alive():
            w.popen.send_signal(signal.SIGCONT)
            w.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[int, int | None] = {}
        for w in self.workers:
            try:
                codes[w.pid] = w.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.popen.kill()
                w.popen.wait(10)
                codes[w.pid] = None
        return codes

    def close(self) -> None:
        for w in self.workers:
            if w.alive():
                with contextlib.suppress(ProcessLookupError):
                    w.popen.send_signal(signal.SIGCONT)
                    w.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.popen.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {w.index} pid {w.pid} exit {w.popen.returncode} ---\n"
            + w.log_path.read_text(errors="replace")
            for w in self.workers
        )


# -- the test process's side -----------------------------------------------------------------


class Scenario:
    """One reliability run: its own database, history file, environment and workers."""

    def __init__(self, directory: Path, seed: int, kind: str = "sqlite") -> None:
        self.directory = directory
        self.seed = seed
        self.kind = kind
        self.db_path = directory / "jobs.db"
        self.url = backend_url(kind, directory)
        self.history_path = directory / "history.jsonl"
        self.marker_dir = directory / "markers"
        self.marker_dir.mkdir()
        python_path = os.pathsep.join(
            p for p in (str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p
        )
        self.env = {
            **os.environ,
            "PYTHONPATH": python_path,
            DB_ENV: self.url,
            HISTORY_ENV: str(self.history_path),
            MARKER_ENV: str(self.marker_dir / "imported"),
        }
        for name in list(self.env):
            if name.startswith("BACKBURNER_"):
                del self.env[name]
        self.pool = WorkerPool(directory, self.env)

    def with_app(self, body: Callable[[Backburner], Awaitable[T]]) -> T:
        """Run `body(app)` on a fresh app of `rel_app` bound to this scenario's database."""
        import rel_app

        async def main() -> T:
            async with rel_app.build_app(self.url) as app:
                return await body(app)

        return asyncio.run(main())

    def records(self, ids: Sequence[str]) -> dict[str, JobRecord | None]:
        async def fetch(app: Backburner) -> dict[str, JobRecord | None]:
            return {job_id: await app.get_job(job_id) for job_id in ids}

        return self.with_app(fetch)

    def record(self, job_id: str) -> JobRecord:
        found = self.records([job_id])[job_id]
        assert found is not None, f"job {job_id} does not exist"
        return found

    def history(self) -> History:
        return load_history(self.history_path)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """A read straight from the file, as another process would do it (SQLite only)."""
        assert self.kind == "sqlite", "query() reads the SQLite file"
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as conn:
            return conn.execute(sql, params).fetchall()

    def states(self) -> dict[str, int]:
        if self.kind == "sqlite":
            if not self.db_path.exists():
                return {}
            rows = self.query("SELECT state, count(*) FROM backburner_jobs GROUP BY state")
            return {state: count for state, count in rows}

        async def count(app: Backburner) -> dict[str, int]:
            totals: dict[str, int] = {}
            for (_, state), n in (await app.backend.counts()).items():
                totals[state.value] = totals.get(state.value, 0) + n
            return totals

        return self.with_app(count)

    def wait_for(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        *,
        every: float = 0.1,
        tick: Callable[[], object] | None = None,
    ) -> float:
        """Poll until `condition()`; returns the monotonic time it became true."""
        deadline = time.monotonic() + timeout
        while True:
            if condition():
                return time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what} (seed {self.seed}); "
                    f"states={self.states()}\n{self.pool.logs()[-6000:]}"
                )
            if tick is not None:
                tick()
            time.sleep(every)

    def wait_all_terminal(
        self, timeout: float, tick: Callable[[], object] | None = None
    ) -> float:
        def done() -> bool:
            states = self.states()
            return bool(states) and all(s in TERMINAL for s in states)

        return self.wait_for(done, timeout, "every job to be terminal", every=0.2, tick=tick)

    def close(self) -> None:
        self.pool.close()
        if self.kind == "sqlite":
            shutil.rmtree(socket_directory(str(self.db_path)), ignore_errors=True)
            return

        async def destroy(app: Backburner) -> None:
            await app.backend.destroy()  # type: ignore[attr-defined]

        self.with_app(destroy)


def logs_mention(pool: WorkerPool, *needles: str) -> list[str]:
    """Log lines of any worker that contain one of `needles` (case-insensitive)."""
    text = pool.logs().lower()
    return [line for line in text.splitlines() if any(n.lower() in line for n in needles)]
