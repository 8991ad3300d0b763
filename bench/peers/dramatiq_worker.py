"""One Dramatiq worker process: what the `dramatiq` command runs in each of its processes,
with one setting the command does not expose. An idle Dramatiq consumer polls Redis with a
backoff capped at `worker_timeout` (1 s by default), which would put up to a second into
every latency sample; 1 ms gives its best-case latency (at the cost of an idle worker
polling 1000 times a second), as the SQLite benchmark does for Huey.

    python dramatiq_worker.py --threads N
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

import dramatiq_app
from dramatiq import Worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    broker = dramatiq_app.broker
    broker.emit_after("process_boot")
    worker = Worker(broker, worker_threads=args.threads, worker_timeout=1)
    worker.start()
    stop.wait()
    worker.stop()
    broker.close()


if __name__ == "__main__":
    main()
