"""Wake-ups and job events between processes through LISTEN/NOTIFY.

Local subscribers get every event at once (LocalNotifier). Other processes hear them on one
channel per event kind (`PostgresConfig.channel`), so a worker, which listens to `wakeup`
and `cancel`, never receives the flow of job events:

- Wake-ups are sent by the SQL statements that make work ready (insert, release, retry, a
  retry scheduled, a rescue), inside their own transaction: PostgreSQL delivers a NOTIFY at
  commit and drops it on rollback, so a wake-up never arrives before its job is visible,
  even for an enqueue inside the application's transaction. `publish` therefore delivers
  wake-ups locally only.
- The insert statements send the `job` events of the jobs they store the same way, in the
  name of this process (`statement_events`, `sent_by_statement`): an enqueue is one
  statement, whose events are seen at its commit (for an enqueue inside the application's
  transaction, at the application's commit, and never if it rolls back).
- Other job events (state changes, progress) and cancel requests are published after the
  change committed: queued, and sent by one background task, everything queued meanwhile in
  one statement on a pooled connection. Publishing never blocks the caller.

Each message carries its sender's token so a process does not deliver its own events twice.
A transaction that notifies takes a cluster-wide lock at commit (the notification queue is
shared), so commits that notify are serialised: hence one NOTIFY statement per batch of
events, never one per event.
Delivery stays best effort (see notify.py). The listener has a connection of its own (LISTEN
is per session) and reconnects by itself with backoff; while it is down, subscribers are
poked every `fallback_poll` seconds so workers claim and waiters re-read the store (polling
instead of notifications), and once more when it is back, since messages sent meanwhile are
gone.
Behind a transaction pooler (`pooler=transaction`) the LISTEN connection goes to `listen_url`,
directly to the server; without one there is none, and the fallback polls all the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson

from backburner.backends.postgres import connections
from backburner.backends.postgres.config import PostgresConfig
from backburner.backends.postgres.errors import TRANSLATED
from backburner.notify import Event, EventKind, LocalNotifier, SentEvents, Subscription

log = logging.getLogger("backburner.notify")

PING_EVERY = 10.0
"""Seconds of silence after which the listener checks its connection (a half-open TCP
connection never reports an error by itself)."""
PING_TIMEOUT = 5.0
MAX_BACKOFF = 5.0
MAX_PAYLOAD = 7900
"""Bytes per NOTIFY payload; the server refuses 8000 and more."""
EVENTS_BUDGET = MAX_PAYLOAD - 64
"""Bytes the events of one payload may take (what is left is the envelope: origin, brackets)."""
_EVENT_FRAME = 32
"""What a job event of an insert statement takes besides `orjson.dumps([queue, id, task])`:
`"job", `, a space after each comma, `, "scheduled", 0` and the `, ` before the next (25;
PostgreSQL's json escapes exactly what orjson escapes, the same way)."""
_EVENT_FIELDS = 7
"""Length of `Event.to_json()`; the SQL statements send only the first two fields."""

Connect = Callable[[PostgresConfig, str], Awaitable[Any]]


class PostgresNotifier(LocalNotifier):
    def __init__(
        self,
        config: PostgresConfig,
        pool: Callable[[], Any],
        notify_sql: str,
        connect: Connect = connections.connect,
    ) -> None:
        super().__init__()
        self._config = config
        self._pool = pool
        """The backend's pool, None while the backend is closed."""
        self._notify_sql = notify_sql
        """The `notify` query of queries.sql."""
        self._connect = connect
        self.origin = os.urandom(8).hex()
        """Sent with every message of this process (SQL statements included); its own
        listener skips them, they were delivered locally already."""
        self._outbox: list[tuple[str, list[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._wanted: set[str] = set()
        self._listener: asyncio.Task[None] | None = None
        self._fallback: asyncio.Task[None] | None = None
        self._more_channels = asyncio.Event()
        self.connected = asyncio.Event()
        """Set while the listener is connected and listening (tests wait on it)."""
        self._down = asyncio.Event()
        self.listener_pid: int | None = None
        """The server process of the LISTEN connection while it is up."""
        self._leftover: Any = None
        """The LISTEN connection of a listener that was stopped, for close() to close."""
        self._polling_said = False
        """Whether the polling-only warning was logged (once per notifier)."""
        self._job_channel = config.channel("job")
        self._sent = SentEvents()
        """Job events an insert statement sent (see `sent_by_statement`)."""

    # -- sending ---------------------------------------------------------------------------
    def statement_events(
        self, jobs: Iterable[tuple[str, str, str]]
    ) -> tuple[str | None, str, int]:
        """The parameters with which an insert statement sends the `job` events of its jobs
        ((queue, id, task) each) itself (queries.sql, `announced`): their channel, this
        process's token, and how many events one payload may hold, by the longest one.

        None for the channel when one event alone would not fit in a payload (a name or id
        of kilobytes): then the statement sends none and publish() sends them afterwards,
        as any other event, trimming what it must (`_messages`). An insert must never
        fail for the sake of a notification."""
        try:
            widest = max((len(orjson.dumps(job)) for job in jobs), default=0) + _EVENT_FRAME
        except orjson.JSONEncodeError:  # not UTF-8 (a lone surrogate): the store says so
            return None, self.origin, 1
        if widest > EVENTS_BUDGET:
            return None, self.origin, 1
        return self._job_channel, self.origin, EVENTS_BUDGET // widest

    def sent_by_statement(self, events: Iterable[tuple[str, int, tuple[str, ...]]]) -> None:
        """An insert statement that committed (or will, with the application's transaction)
        has sent, in this process's name, the job event of each (job id, attempt, possible
        states): the publish() of that event that follows delivers it locally only (see
        notify.SentEvents; RedisNotifier.sent_by_script is the same for the Lua scripts)."""
        self._sent.mark(events)

    def publish(self, events: Sequence[Event]) -> None:
        self._deliver_locally(events)
        if self._pool() is None:
            return
        for event in events:
            if event.kind == "wakeup":  # wake-ups travel with their transaction (see above)
                continue
            if self._sent and self._sent.take(event):
                continue
            self._outbox.append((self._config.channel(event.kind), event.to_json()))
        if not self._outbox or (self._sender is not None and not self._sender.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on a loop: local delivery only
        self._sender = loop.create_task(self._send(), name="backburner-pg-publish")

    async def _send(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            pool = self._pool()
            if pool is None:
                return
            channels, payloads = self._messages(batch)
            try:
                await pool.execute(self._notify_sql, channels, payloads)
            except TRANSLATED as exc:
                # Best effort by design: receivers fall back to their poll interval.
                log.debug("notification not sent: %s", exc)

    def _messages(self, batch: list[tuple[str, list[Any]]]) -> tuple[list[str], list[str]]:
        """One payload per channel, split where it would exceed MAX_PAYLOAD."""
        by_channel: dict[str, list[list[Any]]] = {}
        for channel, item in batch:
            by_channel.setdefault(channel, []).append(item)
        channels: list[str] = []
        payloads: list[str] = []
        for channel, items in by_channel.items():
            chunk: list[bytes] = []
            size = 0
            for item in items:
                encoded = orjson.dumps(item)
                if len(encoded) > MAX_PAYLOAD - 64:
                    # A huge progress message: send the change without it; receivers see
                    # an event without progress and re-read the store.
                    encoded = orjson.dumps([*item[:6], None])
                if chunk and size + len(encoded) > MAX_PAYLOAD - 64:
                    channels.append(channel)
                    payloads.append(self._payload(chunk))
                    chunk, size = [], 0
                chunk.append(encoded)
                size += len(encoded) + 1
            if chunk:
                channels.append(channel)
                payloads.append(self._payload(chunk))
        return channels, payloads

    def _payload(self, items: list[bytes]) -> str:
        return f'{{"o":"{self.origin}","e":[{b",".join(items).decode()}]}}'

    # -- receiving -------------------------------------------------------------------------
    def subscribe(
        self, kinds: Iterable[EventKind], job_id: str | None = None, maxsize: int = 1000
    ) -> Subscription:
        sub = super().subscribe(kinds, job_id, maxsize)
        for kind in sub.kinds:
            channel = self._config.channel(kind)
            if channel not in self._wanted:
                self._wanted.add(channel)
                self._more_channels.set()
        loop = asyncio.get_running_loop()
        if self._config.listen_dsn is None:
            self._poll_only()
        elif self._listener is None or self._listener.done():
            self._down.set()
            self._listener = loop.create_task(self._listen(), name="backburner-pg-listen")
        if self._fallback is None or self._fallback.done():
            self._fallback = loop.create_task(self._poll_while_down(), name="backburner-pg-poll")
        return sub

    def _poll_only(self) -> None:
        """Behind a transaction pooler without `listen_url` there is no session to LISTEN
        on: the fallback polls for as long as the notifier lives, and says so once."""
        if not self._down.is_set() and not self._polling_said:
            self._polling_said = True
            log.warning(
                "pooler=transaction without listen_url: no LISTEN connection; other "
                "processes' wake-ups and job events are polled every %g s (fallback_poll)",
                self._config.fallback_poll,
            )
        self._down.set()

    async def _listen(self) -> None:
        """Forever: connect, LISTEN, wait; after any failure reconnect with backoff."""
        delay = 0.1
        failing = False
        while True:
            conn: Any = None
            try:
                if self._pool() is None:
                    raise ConnectionError("the backend is closed")
                conn = await self._connect(self._config, connections.LISTEN)
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set_on_close, lost))
                listening: set[str] = set()
                while True:
                    self._more_channels.clear()
                    for channel in sorted(self._wanted - listening):
                        await conn.add_listener(channel, self._on_notification)
                        listening.add(channel)
                    if not self.connected.is_set():
                        self.listener_pid = conn.get_server_pid()
                        self._down.clear()
                        self.connected.set()
                        if failing:
                            log.warning("LISTEN connection is back; re-reading the store")
                            # Whatever was sent while we were away is gone.
                            self._missed()
                        failing, delay = False, 0.1
                    await self._watch(conn, lost)
            except asyncio.CancelledError:
                self._leftover = conn  # a healthy connection: close() says goodbye
                raise
            except TRANSLATED as exc:
                if conn is not None:
                    # The server side may be gone already: no goodbye, no waiting.
                    conn.terminate()
                self.connected.clear()
                self._down.set()
                self.listener_pid = None
                if not failing and self._pool() is not None:
                    log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                failing = True
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, MAX_BACKOFF)

    async def _watch(self, conn: Any, lost: asyncio.Event) -> None:
        """Return when new channels are wanted; raise when the connection died."""
        while not self._more_channels.is_set():
            waiters = [asyncio.ensure_future(lost.wait()),
                       asyncio.ensure_future(self._more_channels.wait())]
            try:
                done, _ = await asyncio.wait(waiters, timeout=PING_EVERY,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if lost.is_set() or conn.is_closed():
                raise ConnectionError("the LISTEN connection was closed")
            if not done:
                await conn.execute("SELECT 1", timeout=PING_TIMEOUT)

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message["o"] == self.origin:
                return  # ours: already delivered locally
            events = [
                Event.from_json([*item, *[None] * (_EVENT_FIELDS - len(item))])
                for item in message["e"]
            ]
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("ignored a malformed notification: %s", exc)
            return
        self._deliver_locally(events)

    async def _poll_while_down(self) -> None:
        """The polling fallback: while the listener is down, tell subscribers every
        `fallback_poll` seconds that they may have missed something."""
        while True:
            await self._down.wait()
            await asyncio.sleep(self._config.fallback_poll)
            if self._down.is_set():
                self._missed()

    def _missed(self) -> None:
        """As after an overflow: subscribers re-read the store (workers claim)."""
        for sub in list(self._subscriptions):
            sub.overflowed = True
            sub.poke()

    async def close(self) -> None:
        sender = self._sender
        if sender is not None and not sender.done():
            # Events published just before closing (a completion) still go out.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(sender), 1.0)
        tasks = [t for t in (self._listener, self._fallback, self._sender) if t is not None]
        self._listener = self._fallback = self._sender = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn, self._leftover = self._leftover, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 1.0)
            except TRANSLATED:  # TimeoutError among them
                conn.terminate()
        self._wanted.clear()
        self._outbox.clear()
        self._sent.clear()
        self.connected.clear()
        self._down.clear()
        self.listener_pid = None
        await super().close()


def _set_on_close(event: asyncio.Event, _conn: object) -> None:
    event.set()
