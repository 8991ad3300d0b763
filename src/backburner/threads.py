"""Daemon threads for sync tasks.

Not `ThreadPoolExecutor`: its threads are joined at interpreter exit, so one sync task stuck
past its timeout would keep a stopping worker alive forever. Here a thread whose task was
abandoned (timed out, cancelled, released at shutdown) simply keeps running on its own while
a new thread serves the next job; the process can still exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any

_IDLE_EXIT = 60.0

_Work = tuple[Future[Any], Callable[[], Any]]


class DaemonThreads:
    def __init__(self, name: str = "backburner-sync") -> None:
        self._name = name
        self._queue: SimpleQueue[_Work | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._count = 0

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            start = self._idle == 0
            if start:
                self._count += 1
            else:
                self._idle -= 1
        self._queue.put((future, fn))
        if start:
            threading.Thread(
                target=self._serve, name=f"{self._name}-{self._count}", daemon=True
            ).start()
        return future

    def _serve(self) -> None:
        while True:
            try:
                work = self._queue.get(timeout=_IDLE_EXIT)
            except Empty:
                with self._lock:
                    if self._idle > 0:
                        self._idle -= 1
                        self._count -= 1
                        return
                continue
            if work is None:
                return
            future, fn = work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Ask idle threads to exit; busy ones finish their task first (they are daemons)."""
        with self._lock:
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._queue.put(None)
