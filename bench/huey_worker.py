"""A Huey consumer process (one worker thread) for the benchmark.

`--mode drain --jobs N`: start the consumer, report the seconds until N tasks completed,
timed from inside the process. Huey has no burst mode, so completions are counted with its
`complete` signal. `--mode serve`: run the consumer until SIGTERM.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

from common import emit, quiet_logging
from huey.consumer import Consumer  # type: ignore[import-untyped]
from huey.signals import SIGNAL_COMPLETE  # type: ignore[import-untyped]
from huey_app import CONSUMER_OPTIONS, make_huey


class Countdown:
    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = threading.Event()

    def __call__(self, signal: str, task: Any, *args: Any) -> None:
        # Called on the single worker thread only: no lock needed.
        self.count += 1
        if self.count >= self.target:
            self.done.set()


def drain(db: Path, jobs: int) -> dict[str, Any]:
    bench = make_huey(db)
    countdown = Countdown(jobs)
    bench.huey.signal(SIGNAL_COMPLETE)(countdown)
    consumer = Consumer(bench.huey, **CONSUMER_OPTIONS)
    started = time.perf_counter()
    consumer.start()
    finished = countdown.done.wait(timeout=110)
    seconds = time.perf_counter() - started
    consumer.stop(graceful=True)
    return {"seconds": seconds, "processed": countdown.count, "finished": finished}


def serve(db: Path) -> dict[str, Any]:
    bench = make_huey(db)
    Consumer(bench.huey, **CONSUMER_OPTIONS).run()  # SIGTERM stops it
    return {"processed": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--mode", choices=("drain", "serve"), required=True)
    parser.add_argument("--jobs", type=int, default=0)
    args = parser.parse_args()
    quiet_logging()
    emit(drain(args.db, args.jobs) if args.mode == "drain" else serve(args.db))


if __name__ == "__main__":
    main()
