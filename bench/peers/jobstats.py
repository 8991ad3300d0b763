"""Job counters shared between worker processes and the harness, the same for every library.

Every benchmark task calls `noop()` (or `job_started()` ... `job_finished()` around its
work). Each worker process that runs a task maps a small file `<pid>.stats` in
`$BENCH_STATS_DIR` and writes (jobs done, start of measurement, last finish) into it: a
few hundred nanoseconds per job, no round trip to any store, so it costs every library the
same. The harness reads the files to see when the queue is drained, without asking the
library (each one counts differently) and without waiting for a process to exit.

Start-up barrier: with `$BENCH_BARRIER=N`, the first task in a process blocks that whole
process (a blocked event loop, or every worker thread) until N processes have reached their
first task. So a drain is timed from the moment all N processes are up and holding jobs (the
last registration) to the last finish: interpreter start-up, imports and connecting are
excluded for every library alike, and a slow-starting second process does not leave the
first to drain alone.

Standard library only: this file is imported inside every peer's virtualenv.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ENV_DIR = "BENCH_STATS_DIR"
ENV_BARRIER = "BENCH_BARRIER"
SUFFIX = ".stats"
# count, registered_at (time.time() when this process reached its first task), last finish
LAYOUT = struct.Struct("<qdd")
# A process that never gets a job must not hang the run: give up waiting after this.
BARRIER_TIMEOUT = 60.0


class _Recorder:
    def __init__(self, directory: Path, barrier: int) -> None:
        self.pid = os.getpid()
        self.registered_at = time.time()
        fd = os.open(directory / f"{self.pid}{SUFFIX}", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, LAYOUT.size)
            self.map = mmap.mmap(fd, LAYOUT.size)
        finally:
            os.close(fd)
        self.count = 0
        self.lock = threading.Lock()
        self._write(0.0)
        _wait_for(directory, barrier)

    def _write(self, last: float) -> None:
        LAYOUT.pack_into(self.map, 0, self.count, self.registered_at, last)

    def finished(self) -> None:
        now = time.time()
        with self.lock:  # thread pools call this concurrently
            self.count += 1
            self._write(now)


def _wait_for(directory: Path, processes: int) -> None:
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while time.monotonic() < deadline:
        if sum(1 for name in os.listdir(directory) if name.endswith(SUFFIX)) >= processes:
            return
        time.sleep(0.001)


_recorder: _Recorder | None = None
_init_lock = threading.Lock()


def _get() -> _Recorder | None:
    global _recorder
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return None  # not a measured run (latency scenario, manual use)
    recorder = _recorder
    if recorder is not None and recorder.pid == os.getpid():
        return recorder
    # First task in this process (or in a forked child of a process that had one): every
    # other thread arriving meanwhile waits on the lock, so the whole process holds still
    # until the barrier opens.
    with _init_lock:
        if _recorder is None or _recorder.pid != os.getpid():
            _recorder = _Recorder(Path(directory), int(os.environ.get(ENV_BARRIER, "1")))
        return _recorder


def job_started() -> None:
    _get()


def job_finished() -> None:
    recorder = _get()
    if recorder is not None:
        recorder.finished()


def noop() -> None:
    """The whole body of a no-op benchmark task."""
    job_finished()


# -- harness side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessStats:
    pid: int
    count: int
    registered_at: float
    last_finish: float


def read_all(directory: Path) -> list[ProcessStats]:
    stats = []
    for path in directory.glob(f"*{SUFFIX}"):
        data = path.read_bytes()
        if len(data) < LAYOUT.size:
            continue  # created, not yet sized
        count, registered_at, last = LAYOUT.unpack_from(data)
        stats.append(ProcessStats(int(path.stem), count, registered_at, last))
    return stats
