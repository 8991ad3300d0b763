"""One connection on which concurrent script calls are written as they come and answered in
order (auto-pipelining), for the hot calls on a single Redis server.

redis-py's asyncio client spends ~60 us of CPU per command above the socket (a pool checkout,
a retry wrapper, a timeout context per read, a parser coroutine per reply); one enqueue
against an idle server was mostly that. Here a call is a packed command written to the
socket at once and a future the reply resolves: Redis answers a connection's commands in
order, so replies are matched to callers by position. Concurrent callers share the socket
without waiting for each other's round trips.

The connection is opened by redis-py's own connection class (so the URL's TLS, credentials,
database, RESP version and Sentinel lookup all apply as for every other connection), then
taken over: its transport is given a protocol that feeds hiredis's reply parser directly.

Failures are redis-py's exceptions, so the backend translates them as any other:
- the connection is lost: every call in flight fails with ConnectionError, and the next call
  connects again (through Sentinel, to whichever server is the primary then);
- no reply for `socket_timeout` seconds to the oldest call in flight: every call in flight
  fails with TimeoutError and the connection is dropped (its late replies would otherwise be
  matched to later callers);
- an error reply fails its own call only (NOSCRIPT, say; the backend reloads and calls again).
A caller cancelled while it waits leaves its reply to be read and dropped: whether the command
ran is unknown, as with any client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from redis import exceptions as rx

try:
    import hiredis

    _HIREDIS = True
except ImportError:  # the `redis` extra installs it; without it the backend uses redis-py only
    _HIREDIS = False

try:
    from redis._parsers.base import BaseParser

    _parse_error: Callable[[str], Exception] | None = BaseParser.parse_error
except ImportError:  # a redis-py without the module: error replies as plain ResponseError
    _parse_error = None


def available() -> bool:
    return _HIREDIS


def error_of(reply: Exception) -> Exception:
    """redis-py's exception for an error reply (NoScriptError for NOSCRIPT, ReadOnlyError
    for READONLY, ...), as its own parser would raise."""
    message = str(reply)
    if _parse_error is not None:
        return _parse_error(message)
    return rx.ResponseError(message)


class _Replies(asyncio.Protocol):
    """Feeds what the server sends to hiredis and resolves the oldest waiting call per reply."""

    def __init__(self, owner: PipelinedConnection, encoding: str | None) -> None:
        self._owner = owner
        self._reader = (
            hiredis.Reader(encoding=encoding, errors="replace") if encoding
            else hiredis.Reader()
        )
        self.transport: asyncio.Transport | None = None

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        waiting = self._owner._waiting
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                if not waiting:
                    # A reply nobody asked for (a push message): the stream is not ours to
                    # read any more.
                    self._owner._broken(rx.ConnectionError("Redis sent an unexpected reply"))
                    return
                future, _ = waiting.popleft()
                if not future.done():
                    if isinstance(reply, hiredis.ReplyError):
                        future.set_exception(error_of(reply))
                    else:
                        future.set_result(reply)
        except hiredis.ProtocolError as exc:
            self._owner._broken(rx.ConnectionError(f"Redis protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._broken(rx.ConnectionError(
            f"Connection to Redis lost{f': {exc}' if exc else ''}"
        ))

    def eof_received(self) -> bool | None:
        self._owner._broken(rx.ConnectionError("Connection closed by Redis"))
        return None


class PipelinedConnection:
    """See the module's docstring. One per backend and event loop."""

    def __init__(self, make_connection: Callable[[], Any], timeout: float | None,
                 encoding: str | None) -> None:
        self._make_connection = make_connection
        self._timeout = timeout
        self._encoding = encoding
        self._conn: Any = None  # redis-py's connection that opened the socket
        self._protocol: _Replies | None = None
        self._opening: asyncio.Future[None] | None = None
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    async def call(self, packed: bytes) -> Any:
        """Send one packed command; its reply (an error reply raises redis-py's exception)."""
        transport = await self._transport()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((future, loop.time()))
        transport.write(packed)
        if self._watchdog is None and self._timeout is not None:
            self._watchdog = loop.call_at(loop.time() + self._timeout, self._check_timeout)
        return await future

    async def call_many(self, packed: Sequence[bytes]) -> list[Any]:
        """Send commands in one write; their replies in order, an error reply as its
        exception object in its place (nothing raised for it)."""
        transport = await self._transport()
        loop = asyncio.get_running_loop()
        now = loop.time()
        futures = [loop.create_future() for _ in packed]
        self._waiting.extend((f, now) for f in futures)
        transport.write(b"".join(packed))
        if self._watchdog is None and self._timeout is not None:
            self._watchdog = loop.call_at(now + self._timeout, self._check_timeout)
        results: list[Any] = []
        try:
            for future in futures:
                try:
                    results.append(await future)
                except rx.ResponseError as exc:
                    results.append(exc)
        except BaseException:
            # Cancelled (or the connection failed) part-way: the replies still to come have
            # nobody to read them; cancelled futures drop them instead of holding an error
            # that asyncio would report as never retrieved.
            for future in futures:
                future.cancel()
            raise
        return results

    async def close(self) -> None:
        self._closed = True
        self._drop(rx.ConnectionError("the Redis backend was closed"))

    # -- connection ----------------------------------------------------------------------
    async def _transport(self) -> asyncio.Transport:
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            if not protocol.transport.is_closing():
                return protocol.transport
            # Closed under us (the server hung up) before connection_lost came: what is in
            # flight cannot be answered any more, and a write would be dropped silently.
            self._drop(rx.ConnectionError("Connection to Redis closed"))
        protocol = await self._connect()
        assert protocol.transport is not None
        return protocol.transport

    async def _connect(self) -> _Replies:
        if self._closed:
            raise rx.ConnectionError("the Redis backend was closed")
        opening = self._opening
        if opening is not None:
            await asyncio.shield(opening)
            if self._protocol is None:
                raise rx.ConnectionError("Redis connection failed")
            return self._protocol
        opening = self._opening = asyncio.get_running_loop().create_future()
        try:
            protocol = await self._take_over()
        except BaseException as exc:
            if isinstance(exc, Exception):
                opening.set_exception(exc)
                opening.exception()  # retrieved: waiters re-raise a ConnectionError of theirs
            else:
                opening.cancel()
            raise
        else:
            opening.set_result(None)
            return protocol
        finally:
            self._opening = None

    async def _take_over(self) -> _Replies:
        conn = self._make_connection()
        await conn.connect()
        writer = getattr(conn, "_writer", None)
        reader = getattr(conn, "_reader", None)
        # Nothing may be left unread from the handshake: it would be taken for a reply.
        buffered = getattr(reader, "_buffer", None)
        if writer is None or reader is None or buffered:
            await conn.disconnect()
            raise rx.ConnectionError("cannot take over the Redis connection")
        protocol = _Replies(self, self._encoding)
        transport = writer.transport
        protocol.transport = transport
        transport.set_protocol(protocol)
        if self._closed:
            transport.close()
            raise rx.ConnectionError("the Redis backend was closed")
        self._conn, self._protocol = conn, protocol
        return protocol

    def _broken(self, exc: Exception) -> None:
        self._drop(exc)

    def _drop(self, exc: Exception) -> None:
        protocol, self._protocol = self._protocol, None
        conn, self._conn = self._conn, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(exc)
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
        if conn is not None:
            # The socket is closed above; redis-py's object forgets its streams so it
            # neither warns nor closes again when collected.
            with contextlib.suppress(AttributeError):
                conn._writer = conn._reader = None

    def _check_timeout(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        assert self._timeout is not None
        _, oldest = self._waiting[0]
        due = oldest + self._timeout
        if loop.time() >= due:
            self._drop(rx.TimeoutError(
                f"Timeout reading from Redis: no reply within {self._timeout:g} s"
            ))
        else:
            self._watchdog = loop.call_at(due, self._check_timeout)
