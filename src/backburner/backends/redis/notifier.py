"""Wake-ups and job events between processes through Redis pub/sub.

Local subscribers get every event at once (LocalNotifier); other processes get them through
two channels: `<prefix>:signals` (wake-ups and cancel requests: what workers listen to) and
`<prefix>:events` (job changes: result waiters, live streams). A process subscribes to a
channel only when something in it first asks for that kind of event, so a worker never
receives the flood of job events.

Publishing never blocks the caller: events are queued and sent by one background task, a
pipeline of one PUBLISH per channel for everything queued meanwhile. Each message carries its
sender's token so a process does not deliver its own events twice.

On a Redis Cluster the same two channels are used with classic PUBLISH/SUBSCRIBE, which a
cluster forwards to every node: the Lua scripts publish from whichever node holds their
queue's slot, and a listener connected to any node receives everything. Sharded pub/sub
(SPUBLISH) would keep each message on one shard, but a script may only SPUBLISH to a channel
of its own slot, so it would take a channel per queue and a subscription per queue a worker
serves; the broadcast costs one cluster-bus message per node per publish, which is fine at
the sizes Backburner targets (docs/redis-in-production.md).

Delivery stays best effort (see notify.py). A listener whose connection drops reconnects with
backoff and never stops; once back, it tells its subscribers that events may have been
missed (`overflowed`), so workers claim and waiters re-read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from backburner.backends.redis.client import Client
from backburner.backends.redis.errors import TRANSLATED
from backburner.backends.redis.keys import Keys
from backburner.notify import Event, EventKind, LocalNotifier, SentEvents, Subscription

log = logging.getLogger("backburner.notify")

SILENCE = 15.0
"""Seconds without any message after which a listener pings, and after twice which it
considers its connection dead (a half-open TCP connection never reports an error)."""
MAX_BACKOFF = 5.0
CLOSE_WAIT = 5.0
"""Seconds close() waits for the listeners to stop."""
WAKEUP_MESSAGES = 10_000
"""Most queues whose encoded wake-up message is kept (see `wakeup_message`)."""
SCRIPT_PUBLISHED_STATES = frozenset({"running", "completed"})
"""Job states whose events the scripts publish for every job that enters them (claim.lua,
complete.lua); other processes hear of them without the worker's Python."""


class RedisNotifier(LocalNotifier):
    def __init__(self, keys: Keys, client: Callable[[], Client | None]) -> None:
        super().__init__()
        self._client = client
        self._channels: dict[EventKind, str] = {
            "wakeup": keys.signals_channel,
            "cancel": keys.signals_channel,
            "job": keys.events_channel,
        }
        self._origin = os.urandom(8).hex()
        self._outbox: dict[str, list[list[Any]]] = {}
        self._sender: asyncio.Task[None] | None = None
        self._listeners: dict[str, asyncio.Task[None]] = {}
        self.connected: dict[str, asyncio.Event] = {}
        """Per channel: set while its listener is subscribed (tests wait on it)."""
        self._closing = False
        """Set by close(): listeners stop even if redis-py swallowed their cancellation."""
        self._sent = SentEvents()
        """Job events a script just published (see `sent_by_script`)."""
        self._wakeup_messages: dict[str, str] = {}

    @property
    def origin(self) -> str:
        """This process's token in every message it sends (scripts that publish carry it)."""
        return self._origin

    def channel(self, kind: EventKind) -> str:
        return self._channels[kind]

    def wants_job_events_of(self, state: str) -> bool:
        """Whether the job events of changes to `state` must still be published: those the
        scripts publish themselves (claim.lua: running, complete.lua: completed) only for
        this process's own subscribers (see Instrumentation.wants_changes)."""
        return state not in SCRIPT_PUBLISHED_STATES or self._wants_kind("job")

    def wakeup_message(self, queue: str) -> str:
        """The message that wakes `queue`'s workers, in this process's name, as `publish`
        would send it: lua/insert.lua publishes it as given (encoding it there costs the
        server more than the whole rest of the message)."""
        found = self._wakeup_messages.get(queue)
        if found is None:
            if len(self._wakeup_messages) >= WAKEUP_MESSAGES:
                self._wakeup_messages.clear()
            found = orjson.dumps([self._origin, [Event("wakeup", queue).to_json()]]).decode()
            self._wakeup_messages[queue] = found
        return found

    # -- sending ---------------------------------------------------------------------------
    def sent_by_script(self, events: Iterable[tuple[str, int, tuple[str, ...]]]) -> None:
        """A script has just published, in this process's name, the job event of each (job
        id, attempt, possible states) of `events` (lua/insert.lua, claim.lua, complete.lua):
        the publish() of those events that follows (instrument.py, once the store answered)
        then delivers them locally only. An insert's wake-up goes with them: see
        `_announced_queues`."""
        self._sent.mark(events)

    def _announced_queues(self, events: Sequence[Event]) -> set[str]:
        """Queues whose wake-up an insert script published along with a job event of this
        batch (attempt 0: only inserts mark those): the enqueue's own wake-up, published with
        its job events (Instrumentation.enqueued), was sent already, however late the
        enqueuer resumes (group commit resumes its callers after the step that stored their
        jobs)."""
        return {e.queue for e in events if e.attempt == 0 and self._sent.covers(e)}

    def publish(self, events: Sequence[Event]) -> None:
        self._deliver_locally(events)
        if self._client() is None:
            return
        announced = self._announced_queues(events) if self._sent else ()
        for event in events:
            if event.kind == "wakeup" and event.queue in announced:
                continue
            if self._sent and self._sent.take(event):
                continue
            self._outbox.setdefault(self._channels[event.kind], []).append(event.to_json())
        if not self._outbox:
            return
        if self._sender is None or self._sender.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # not on a loop: local delivery only
            self._sender = loop.create_task(self._send(), name="backburner-redis-publish")

    async def _send(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, {}
            client = self._client()
            if client is None:
                return
            try:
                if isinstance(client, RedisCluster):
                    # redis-py refuses PUBLISH in a cluster pipeline; there are at most two
                    # channels. A cluster forwards a PUBLISH to every node, so subscribers
                    # connected to any node get it.
                    for channel, items in batch.items():
                        await client.publish(channel, orjson.dumps([self._origin, items]))
                else:
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, items in batch.items():
                            pipe.publish(channel, orjson.dumps([self._origin, items]))
                        await pipe.execute()
            except TRANSLATED as exc:
                # Best effort by design: receivers fall back to their poll interval.
                log.debug("notification not published: %s", exc)

    # -- receiving -------------------------------------------------------------------------
    def subscribe(
        self, kinds: Iterable[EventKind], job_id: str | None = None, maxsize: int = 1000
    ) -> Subscription:
        sub = super().subscribe(kinds, job_id, maxsize)
        self._closing = False
        for channel in {self._channels[k] for k in sub.kinds}:
            task = self._listeners.get(channel)
            if task is None or task.done():
                self.connected.setdefault(channel, asyncio.Event())
                self._listeners[channel] = asyncio.get_running_loop().create_task(
                    self._listen(channel), name=f"backburner-redis-listen-{channel}"
                )
        return sub

    async def _listen(self, channel: str) -> None:
        """Forever: subscribe, read, and after any failure reconnect with backoff."""
        delay = 0.1
        failing = False
        while not self._closing:
            client = self._client()
            pubsub = client.pubsub() if client is not None else None
            try:
                if pubsub is None:
                    raise ConnectionError("the backend is closed")
                await pubsub.subscribe(channel)
                self.connected[channel].set()
                if failing:
                    log.warning("pub/sub on %s is back; re-reading the store", channel)
                    self._missed(channel)
                failing, delay = False, 0.1
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except TRANSLATED as exc:
                self.connected[channel].clear()
                if self._closing:
                    return
                if not failing:
                    log.warning("pub/sub on %s lost (%s); reconnecting", channel, exc)
                failing = True
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, MAX_BACKOFF)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        # Through a typed name, not a type: ignore: redis-py < 8.2 leaves
                        # aclose() untyped, later releases type it (the ignore would then be
                        # an "unused ignore" error, depending on the release installed).
                        aclose: Callable[[], Awaitable[object]] = pubsub.aclose
                        await asyncio.shield(aclose())

    async def _read(self, pubsub: PubSub) -> None:
        pinged = False
        # redis-py's get_message can turn a cancellation into "no message" (its read timeout
        # swallows it): so the loop also ends on close()'s flag, or it would ping for ever
        # and close() would hang (a CI run's teardown did, 120 s).
        while not self._closing:
            message = await _next_message(pubsub)
            if message is None:
                if pinged:
                    raise ConnectionError(f"no reply from Redis in {2 * SILENCE:.0f} s")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "message":
                self._receive(message["data"])

    def _receive(self, data: str | bytes) -> None:
        try:
            origin, items = orjson.loads(data)
            if origin == self._origin:
                return  # ours: already delivered locally
            events = [Event.from_json(item) for item in items]
        except (ValueError, TypeError) as exc:
            log.warning("ignored a malformed notification: %s", exc)
            return
        self._deliver_locally(events)

    def _missed(self, channel: str) -> None:
        """Messages sent while the listener was down are gone: tell its subscribers to
        re-read the store, as after an overflow."""
        kinds = {k for k, c in self._channels.items() if c == channel}
        for sub in list(self._subscriptions):
            if sub.kinds & kinds:
                sub.overflowed = True
                sub.poke()

    async def close(self) -> None:
        sender = self._sender
        if sender is not None and not sender.done():
            # Events published just before closing (an enqueue's wake-up) still go out.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(sender), 1.0)
        listeners = list(self._listeners.values())
        self._listeners.clear()
        self._closing = True
        for task in listeners:
            task.cancel()
        if listeners:
            _, stuck = await asyncio.wait(listeners, timeout=CLOSE_WAIT)
            if stuck:
                log.warning("%d pub/sub listener(s) did not stop within %.0f s", len(stuck),
                            CLOSE_WAIT)
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        self._sender = None
        await super().close()


async def _next_message(pubsub: PubSub) -> dict[str, Any] | None:
    """`get_message`, read in a task of its own so that cancelling the listener (a loop's
    end: asyncio.run cancels every task) stops it at once. redis-py's read timeout can
    absorb a cancellation and read on for the rest of its timeout (15 s), and the loop's
    end would wait for it; here the connection is dropped under that read instead."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        # A cancellation that redis-py absorbed in an earlier call (a ping, a read) is
        # still requested: honour it here instead of reading on.
        raise asyncio.CancelledError
    reader = asyncio.ensure_future(pubsub.get_message(timeout=SILENCE))
    try:
        return await asyncio.shield(reader)
    except asyncio.CancelledError:
        reader.cancel()
        connection = pubsub.connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)
        await asyncio.gather(reader, return_exceptions=True)
        raise
