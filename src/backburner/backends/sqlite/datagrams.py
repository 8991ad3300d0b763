"""Cross-process wake-ups and events for processes that share one SQLite file.

SQLite has no LISTEN/NOTIFY. Polling the file costs every idle worker a transaction per
interval and still adds up to one interval of latency. Instead every process that listens
binds a Unix datagram socket in a directory derived from the database's real path; a process
that changes the store sends one datagram to each socket there. A send is a few microseconds,
never blocks (a full receiver drops the datagram and falls back to its poll), and a socket
left behind by a killed process is refused by the kernel, so the sender removes it.

Two sockets per process, bound lazily: `*.wk` receives wake-ups (workers), `*.ev` receives
job events (result waiters, live streams). Publishers send each kind only where it is wanted,
so a busy worker does not pay for events nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterable, Sequence

import orjson

from backburner.notify import Event, EventKind, LocalNotifier, Subscription

log = logging.getLogger("backburner.notify")

# Workers listen for wake-ups and cancel requests on one socket; event readers on another.
_SUFFIX: dict[EventKind, str] = {"wakeup": ".wk", "cancel": ".wk", "job": ".ev"}
# Unix datagrams can be ~200 KiB here; stay well below the smallest common default.
_MAX_DATAGRAM = 60_000


def socket_directory(database_path: str) -> str:
    """Short and per user, because AF_UNIX paths are limited to 108 bytes."""
    real = os.path.realpath(database_path)
    digest = hashlib.sha256(real.encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"backburner-{os.getuid()}", digest)


class DatagramNotifier(LocalNotifier):
    def __init__(self, database_path: str) -> None:
        super().__init__()
        self.directory = socket_directory(database_path)
        self._pid = os.getpid()
        self._sender: socket.socket | None = None
        self._receivers: dict[str, tuple[socket.socket, str]] = {}
        """Socket suffix -> (socket, path)."""
        self._peers: dict[str, tuple[int, list[str]]] = {}

    # -- receiving -------------------------------------------------------------------------
    def subscribe(
        self, kinds: Iterable[EventKind], job_id: str | None = None, maxsize: int = 1000
    ) -> Subscription:
        sub = super().subscribe(kinds, job_id, maxsize)
        for kind in sub.kinds:
            self._bind(kind)
        return sub

    def _bind(self, kind: EventKind) -> None:
        self._forget_parent_sockets()
        suffix = _SUFFIX[kind]
        if suffix in self._receivers:
            return
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, f"{os.getpid()}-{os.urandom(4).hex()}{suffix}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(path)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive, sock)
        self._receivers[suffix] = (sock, path)

    def _receive(self, sock: socket.socket) -> None:
        events: list[Event] = []
        while True:
            try:
                data = sock.recv(_MAX_DATAGRAM + 1024)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            try:
                events.extend(Event.from_json(item) for item in orjson.loads(data))
            except (ValueError, TypeError) as exc:
                log.warning("ignored a malformed notification datagram: %s", exc)
        self._deliver_locally(events)

    async def close(self) -> None:
        for suffix, (sock, path) in list(self._receivers.items()):
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            del self._receivers[suffix]
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        await super().close()

    def _forget_parent_sockets(self) -> None:
        # After fork the child must not read from, or delete, its parent's sockets.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._receivers = {}
            self._sender = None
            self._peers = {}

    # -- sending ---------------------------------------------------------------------------
    def publish(self, events: Sequence[Event]) -> None:
        self._deliver_locally(events)
        self._forget_parent_sockets()
        for suffix in (".wk", ".ev"):
            chosen = [e for e in events if _SUFFIX[e.kind] == suffix]
            # Encoded only for another process: a worker alone with its store (its own
            # socket is the only one) encodes no event.
            peers = self._other_peers(suffix) if chosen else None
            if peers:
                self._send(peers, [e.to_json() for e in chosen])

    def wants_job_events(self) -> bool:
        """Whether a job event published now would reach anyone: a local subscriber or
        another process's event socket (see `Instrumentation.wants_changes`)."""
        if self._wants_kind("job"):
            return True
        self._forget_parent_sockets()
        return bool(self._other_peers(".ev"))

    def _other_peers(self, suffix: str) -> list[str]:
        peers = self._peer_paths(suffix)
        if not peers or not self._receivers:
            return peers
        own_paths = {path for _, path in self._receivers.values()}
        return [path for path in peers if path not in own_paths]

    def _send(self, peers: list[str], items: list[list[object]]) -> None:
        for payload in _chunks(items):
            for path in peers:
                self._send_one(path, payload)

    def _send_one(self, path: str, payload: bytes) -> None:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        try:
            self._sender.sendto(payload, path)
        except (ConnectionRefusedError, FileNotFoundError):
            # Its process is gone: nobody will ever read this socket again.
            with contextlib.suppress(OSError):
                os.unlink(path)
        except (BlockingIOError, InterruptedError):
            pass  # the receiver is behind; it will catch up from the store
        except OSError as exc:
            log.debug("notification to %s dropped: %s", path, exc)

    def _peer_paths(self, suffix: str) -> list[str]:
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return []
        cached = self._peers.get(suffix)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        paths = [os.path.join(self.directory, n) for n in names if n.endswith(suffix)]
        self._peers[suffix] = (mtime, paths)
        return paths


def _chunks(items: list[list[object]]) -> Iterable[bytes]:
    payload = orjson.dumps(items)
    if len(payload) <= _MAX_DATAGRAM or len(items) == 1:
        yield payload
        return
    half = len(items) // 2
    yield from _chunks(items[:half])
    yield from _chunks(items[half:])
