"""An app's store connections, one set per event loop.

asyncio clients (asyncpg pools, redis-py connections, datagram endpoints) belong to the loop
that opened them; used from another loop they fail ("Event loop is closed", "attached to a
different loop"). So a script that calls `asyncio.run` twice, pytest-asyncio's loop per test,
a thread running its own loop, and the sync API's portal each get a backend of their own,
made by `Backend.for_another_loop()`, opened on first use in that loop and closed when the
loop shuts down. The hook for that is an async generator parked in the loop:
`asyncio.run`, `asyncio.Runner` and pytest-asyncio all finalize a loop's async generators
(`loop.shutdown_asyncgens()`) after cancelling its tasks and before closing it, so the close
runs inside the loop, after the worker's tasks have stopped, with no "unclosed" warnings.
A loop closed without that step leaves its connections referenced here, never collected
half-open (which is what would warn).

A backend that holds nothing bound to a loop (`memory://`) answers `for_another_loop()` with
itself: every loop shares it, and only `Backburner.close()` closes it.

Fork (gunicorn --preload, multiprocessing): a child never uses what its parent opened. After
a fork every loop's backend is dropped without a word to the server (closing would end the
parent's sessions on the shared sockets) and kept referenced, and the child makes its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from backburner.backends.protocol import Backend
from backburner.group_commit import GroupInsert


@dataclass(eq=False)
class LoopStore:
    """The backend one event loop uses, and whether it is open there."""

    backend: Backend
    loop: asyncio.AbstractEventLoop | None
    opened: bool = False
    open_lock: asyncio.Lock | None = None
    closer: AsyncGenerator[None, None] | None = field(default=None, repr=False)
    _inserts: GroupInsert | None = field(default=None, repr=False)

    @property
    def inserts(self) -> GroupInsert:
        """Group commit of this loop's plain enqueues (`backburner.group_commit`)."""
        if self._inserts is None:
            self._inserts = GroupInsert(self.backend)
        return self._inserts

    async def open(self) -> None:
        if self.opened:
            return
        if self.open_lock is None:
            self.open_lock = asyncio.Lock()
        async with self.open_lock:
            if self.opened:
                return
            await self.backend.open()
            self.opened = True


class LoopStores:
    """Which backend the running loop uses: `current()`."""

    def __init__(self, backend: Backend) -> None:
        self.first = backend
        spare = backend.for_another_loop()
        self.shared = spare is backend
        """True when one backend serves every loop (it binds nothing to a loop)."""
        self._spare: Backend | None = None if self.shared else spare
        self._first_taken = False
        self._unbound = LoopStore(backend, None)
        self._home: LoopStore | None = None
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopStore] = {}
        self._kept: list[LoopStore] = []
        """Stores of closed loops and of the parent process: referenced, never collected."""
        self._lock = threading.Lock()
        _FORGET_IN_CHILD.add(self)

    def current(self) -> LoopStore:
        """The running loop's store (made on first use, not opened); outside any loop, the
        app's first backend, for reading its settings."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._unbound
        home = self._home
        if home is not None and home.loop is loop:
            return home
        return self._store_of(loop)

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        """The first loop still running that uses this app (a web server's), if any: where
        the sync API sends calls made from that server's worker threads."""
        home = self._home
        if home is None or home.loop is None or not home.loop.is_running():
            return None
        return home.loop

    def _store_of(self, loop: asyncio.AbstractEventLoop) -> LoopStore:
        with self._lock:
            store = self._by_loop.get(loop)
            if store is None:
                self._drop_closed_loops()
                store = LoopStore(self._next_backend(), loop)
                self._by_loop[loop] = store
            home = self._home
            if home is None or home.loop is None or home.loop.is_closed():
                self._home = store
            return store

    def _next_backend(self) -> Backend:
        if self.shared:
            return self.first
        if not self._first_taken:
            self._first_taken = True
            return self.first
        if self._spare is not None:
            spare, self._spare = self._spare, None
            return spare
        return self.first.for_another_loop()

    def _drop_closed_loops(self) -> None:
        for loop, store in list(self._by_loop.items()):
            if loop.is_closed():
                del self._by_loop[loop]
                if store.opened and not self.shared:
                    self._kept.append(store)
                if self._home is store:
                    self._home = None

    async def opened(self, store: LoopStore) -> None:
        """Open `store` in its loop, and arrange for it to close when that loop ends."""
        await store.open()
        if store.closer is None and not self.shared:
            closer = self._closes_with_loop(store)
            store.closer = closer
            await closer.asend(None)

    async def _closes_with_loop(self, store: LoopStore) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._close(store)

    async def close_current(self) -> None:
        """Close the running loop's store (`Backburner.close`); the next call reopens."""
        store = self.current()
        if store.closer is not None:
            closer, store.closer = store.closer, None
            await closer.aclose()  # runs `_close` in its finally
        elif store.opened:
            await self._close(store)

    async def _close(self, store: LoopStore) -> None:
        store.closer = None
        if not store.opened:
            return
        store.opened = False
        with self._lock:
            if store.loop is not None and self._by_loop.get(store.loop) is store:
                del self._by_loop[store.loop]
            if self._home is store:
                self._home = None
        await store.backend.close()

    def forget_after_fork(self) -> None:
        self._kept.extend(self._by_loop.values())
        self._by_loop.clear()
        self._home = None
        if not self.shared:
            # The first backend may hold the parent's connections: every loop of the child
            # gets a fresh one.
            self._first_taken = True
            self._spare = None
            self._unbound = LoopStore(self.first, None)
        self._lock = threading.Lock()


_FORGET_IN_CHILD: weakref.WeakSet[LoopStores] = weakref.WeakSet()
"""Every live `LoopStores`, told after a fork. Process-wide by nature: a fork is."""


def _after_fork_in_child() -> None:
    for stores in list(_FORGET_IN_CHILD):
        stores.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
