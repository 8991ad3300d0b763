"""Running the app's coroutines for sync callers (`enqueue_sync`, `result_sync`...).

Where a call runs:
- on the app's home loop (the web server's, see `LoopStores.home_loop`) when that loop is
  running in another thread: a FastAPI `def` endpoint runs in a worker thread of the server's
  loop, and its call joins that loop's connections, as anyio's `from_thread.run` would;
- otherwise on the app's portal: a private event loop on a daemon thread, started on first
  use, with connections of its own. Django and Flask views, scripts, management commands and
  notebooks (whose own loop is the blocked caller) take this path.

The caller's thread only waits. A call from the portal's own thread (a coroutine running on
it calling the sync API) could never finish, so it is refused with a clear error instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from backburner.errors import BackendUnavailableError, SyncCallError

T = TypeVar("T")

_LIVENESS_CHECK = 0.5
"""How often a caller waiting on the home loop checks that the loop still runs: a loop that
stops before it ran the call would otherwise leave the caller waiting forever."""


class Portal:
    """A private event loop on a daemon thread."""

    def __init__(self, name: str = "backburner-portal") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        _FORGET_IN_CHILD.add(self)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise SyncCallError(
                "a sync call (e.g. enqueue_sync) from a coroutine on Backburner's own portal "
                "loop would wait for itself: await the async method instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def loop(self) -> asyncio.AbstractEventLoop:
        """The portal's running loop, started on first use (for code that schedules on it
        itself, e.g. a WSGI-to-ASGI bridge)."""
        return self._running_loop()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._serve, args=(loop, started), name=self._name, daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            # As asyncio.run ends a loop: the app's connections on it close here
            # (backburner.loops parks their close in an async generator).
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def stop(self) -> None:
        """Stop the loop (closing the connections it opened) and wait for its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or self._pid != os.getpid():
            return
        if thread is threading.current_thread():
            loop.stop()
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def forget_after_fork(self) -> None:
        # The thread did not survive the fork; its loop and connections are the parent's.
        self._lock = threading.Lock()
        self._loop = self._thread = None
        self._pid = os.getpid()


def wait(future: concurrent.futures.Future[T], loop: asyncio.AbstractEventLoop | None) -> T:
    """The call's result, once it has one. `loop`: the home loop the call was sent to,
    watched so that a loop stopping before it ran the call ends the wait."""
    if loop is None:
        return future.result()
    # Not `future.result(timeout=...)`: its TimeoutError could not be told from one the
    # call itself raised (`result_sync(timeout=...)`).
    while not concurrent.futures.wait([future], timeout=_LIVENESS_CHECK).done:
        if not loop.is_running() and future.cancel():
            raise BackendUnavailableError(
                "the event loop this app runs on stopped before the call ran"
            )
    return future.result()


def call_soon(
    make: Callable[[], Coroutine[Any, Any, T]],
    home: asyncio.AbstractEventLoop | None,
    portal: Callable[[], Portal],
) -> T:
    """Run `make()` on `home` when it runs in another thread, else on the portal; block
    until it returns."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if home is not None and home is not here and home.is_running():
        return wait(asyncio.run_coroutine_threadsafe(make(), home), home)
    return wait(portal().submit(make()), None)


_FORGET_IN_CHILD: weakref.WeakSet[Portal] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for portal in list(_FORGET_IN_CHILD):
        portal.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
