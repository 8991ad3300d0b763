"""Concurrent enqueues share round trips and commits (group commit).

A web server under load enqueues from many requests at once; each used to pay a round trip
and a commit of its own. Here the first caller's insert goes out at once; callers that
arrive while it is in flight wait, and go out together as one `Backend.insert` (one
pipelined call on Redis, one statement and one commit on PostgreSQL, one transaction on
SQLite) as soon as it returns. Never on a timer: a lone caller waits for nothing, and the
busier the store, the larger the batches.

Only plain jobs are shared: no unique key (the stores judge a key against what is stored,
not against another job of the same batch) and no flow (a statement of its own). Whether a
job is stored stays each caller's own answer: a shared insert that fails is tried again
caller by caller, so one caller's bad job fails that caller only; an outage
(`BackendUnavailableError`) fails everyone waiting at once, as it would have one by one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from backburner.backends.protocol import Backend, Inserted, NewJob
from backburner.errors import BackendUnavailableError

MAX_BATCH = 500
"""Most jobs in one shared insert: bounds a statement's size and a script's arguments."""


def shareable(jobs: Sequence[NewJob]) -> bool:
    return all(j.unique_key is None and j.flow_id is None for j in jobs)


@dataclass(slots=True)
class _Waiting:
    jobs: Sequence[NewJob]
    future: asyncio.Future[list[Inserted]]


class GroupInsert:
    """One per backend and event loop (`LoopStore.inserts`)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._waiting: deque[_Waiting] = deque()
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None

    async def insert(self, jobs: Sequence[NewJob]) -> list[Inserted]:
        if self._busy:
            waiting = _Waiting(jobs, asyncio.get_running_loop().create_future())
            self._waiting.append(waiting)
            return await waiting.future
        self._busy = True
        try:
            return await self._backend.insert(jobs)
        finally:
            if self._waiting:
                self._drainer = asyncio.get_running_loop().create_task(
                    self._drain(), name="backburner-group-insert"
                )
            else:
                self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._next_batch()
                if batch:
                    await self._insert(batch)
        finally:
            self._busy = False
            self._drainer = None
            for waiting in self._waiting:  # only when cancelled (the loop ending)
                waiting.future.cancel()
            self._waiting.clear()

    def _next_batch(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        while self._waiting:
            waiting = self._waiting[0]
            if waiting.future.done():  # its caller was cancelled while it waited
                self._waiting.popleft()
                continue
            if batch and size + len(waiting.jobs) > MAX_BATCH:
                break
            batch.append(self._waiting.popleft())
            size += len(waiting.jobs)
        return batch

    async def _insert(self, batch: list[_Waiting]) -> None:
        try:
            inserted = await self._backend.insert([j for w in batch for j in w.jobs])
        except BackendUnavailableError as exc:
            for waiting in batch:
                _fail(waiting, exc)
            return
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.future.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            # Whose job failed it: each caller again, on its own.
            for waiting in batch:
                try:
                    _answer(waiting, await self._backend.insert(waiting.jobs))
                except asyncio.CancelledError:
                    waiting.future.cancel()
                    raise
                except Exception as own:
                    _fail(waiting, own)
            return
        start = 0
        for waiting in batch:
            end = start + len(waiting.jobs)
            _answer(waiting, inserted[start:end])
            start = end


def _answer(waiting: _Waiting, inserted: list[Inserted]) -> None:
    if not waiting.future.done():
        waiting.future.set_result(inserted)


def _fail(waiting: _Waiting, exc: BaseException) -> None:
    if not waiting.future.done():
        waiting.future.set_exception(exc)
