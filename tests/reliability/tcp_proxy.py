"""A fault-injecting TCP proxy on loopback: network faults between one client process and the
shared Redis or PostgreSQL server, without touching the server other tests use.

Faults (each call replaces the previous fault; `heal()` ends it):
- `cut()`: every open connection is closed and the proxy stops listening, so new connections
  are refused, as from a server that is down (R7). `restore()` listens again on the port.
- `drop()`: every open connection is reset (RST) and so is every new one until `heal()`.
- `blackhole(direction)`: nothing comes back and nothing says so. Open connections and new
  ones are accepted, read and their bytes discarded, never answered; only timeouts tell a
  client. Such a connection stays silent after `heal()` too (as when a middlebox forgot the
  connection during the partition): the client has to give up on it and open a new one.
  `direction` "both" (default), "up" (client to server only: requests vanish) or "down"
  (server to client only: requests are carried out, their replies vanish).
- `latency(seconds, direction)`: every chunk is delayed that long before it is forwarded.

Only 127.0.0.1: the proxy listens there and the target must be a loopback server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType

DIRECTIONS = ("up", "down")


def _sides(direction: str) -> frozenset[str]:
    if direction == "both":
        return frozenset(DIRECTIONS)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'both', 'up' or 'down', not {direction!r}")
    return frozenset({direction})


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silenced: set[str] = field(default_factory=set)
    """Directions whose bytes are read and discarded, for the rest of this connection."""

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        if target_host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the proxy only reaches loopback servers, not {target_host!r}")
        self.target = ("127.0.0.1", target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._dropping = False
        self._blackhole: frozenset[str] = frozenset()
        self._latency: dict[str, float] = {}
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TCPProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cut()
        self._call(self._settle())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            # Leftover pipe tasks are ended with the loop; an unclosed loop would surface as
            # a ResourceWarning, which the suite treats as an error.
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    # -- faults (called from the test's thread) ----------------------------------------------
    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def drop(self) -> None:
        self._call(self._set(dropping=True))

    def blackhole(self, direction: str = "both") -> None:
        self._call(self._set(blackhole=_sides(direction)))

    def latency(self, seconds: float, direction: str = "both") -> None:
        self._call(self._set(latency={side: seconds for side in _sides(direction)}))

    def heal(self) -> None:
        """Pass-through again for new connections (silenced ones stay silent)."""
        self._call(self._set())

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    # -- on the proxy's loop -----------------------------------------------------------------
    async def _set(
        self, *, dropping: bool = False, blackhole: frozenset[str] = frozenset(),
        latency: dict[str, float] | None = None,
    ) -> None:
        self._dropping, self._blackhole, self._latency = dropping, blackhole, latency or {}
        for conn in list(self._connections):
            if dropping:
                conn.reset()
                self._connections.discard(conn)
            else:
                conn.silenced.update(blackhole)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in list(self._connections):
            conn.reset()
        self._connections.clear()

    async def _settle(self) -> None:
        """Let every connection handler finish after a cut. One accepted just before the cut
        may not have started yet: cancelled unstarted, it would never close its socket (an
        unclosed transport at garbage collection); started, it sees the cut and resets."""
        handlers = asyncio.all_tasks() - {asyncio.current_task()}
        if handlers:
            await asyncio.wait(handlers, timeout=5)
        # An aborted transport lets go of its socket in a callback of the next iteration.
        await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = self._server
        if self._dropping:
            _reset(writer)
            return
        conn = _Connection(writer, silenced=set(self._blackhole))
        self._connections.add(conn)
        try:
            if conn.silenced == set(DIRECTIONS):
                # Nothing reaches the server: accept, read, discard, never answer.
                await self._pipe(conn, "up", reader, None)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                _reset(writer)
                return
            conn.upstream = up_writer
            if self._server is not server or server is None or conn not in self._connections:
                # Cut or dropped while this connection was being made: it must not outlive it.
                conn.reset()
                return
            await asyncio.gather(
                self._pipe(conn, "up", reader, up_writer),
                self._pipe(conn, "down", up_reader, writer),
                return_exceptions=True,
            )
        finally:
            self._connections.discard(conn)
            conn.reset()

    async def _pipe(
        self, conn: _Connection, side: str, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
    ) -> None:
        try:
            while data := await reader.read(65536):
                delay = self._latency.get(side, 0.0)
                if delay and side not in conn.silenced:
                    await asyncio.sleep(delay)
                if side in conn.silenced or writer is None:
                    continue  # read and discarded: no answer, no reset
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # A silenced direction never tells the other end that this one went away.
            if side not in conn.silenced:
                conn.reset()
