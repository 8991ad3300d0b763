"""A worker's own metrics endpoint (`backburner worker --metrics-port N`): GET /metrics (the
app's JobMetrics, see backburner.metrics) and GET /healthz, on the worker's event loop.

A worker process has no web framework of its own, and its store-derived figures are read
with async store calls, so this is a few lines of asyncio rather than prometheus_client's
threaded server. It speaks just enough HTTP/1.1 for a scraper and a probe: one request per
connection, bounded in size and time; anything else gets a 4xx and the connection closed.

    server = await MetricsServer.start(JobMetrics.of(app), "127.0.0.1", 9100)
    ...
    await server.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from backburner.errors import BackendUnavailableError, ConfigurationError
from backburner.metrics import CONTENT_TYPE, JobMetrics

log = logging.getLogger("backburner.metrics")

_REQUEST_TIMEOUT = 10.0
"""Seconds a client gets to send its request head: a stuck client never holds a slot."""
_MAX_HEAD = 8192


class MetricsServer:
    def __init__(self, metrics: JobMetrics, server: asyncio.Server) -> None:
        self.metrics = metrics
        self._server = server

    @classmethod
    async def start(cls, metrics: JobMetrics, host: str, port: int) -> MetricsServer:
        """Listen on host:port (port 0: any free one, see `port`). A port already taken, or an
        address this machine does not have, is a ConfigurationError naming it."""
        holder: list[MetricsServer] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder[0]._serve(reader, writer)

        try:
            server = await asyncio.start_server(handle, host, port, reuse_address=True)
        except OSError as exc:
            raise ConfigurationError(
                f"metrics endpoint: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "is another process using that port?") from None
        holder.append(cls(metrics, server))
        log.info("metrics on http://%s:%d/metrics", host, holder[0].port)
        return holder[0]

    @property
    def port(self) -> int:
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(_REQUEST_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
                await _answer(writer, 400, b"bad request\n")
                return
            if len(head) > _MAX_HEAD:
                await _answer(writer, 431, b"request head too large\n")
                return
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            if method not in ("GET", "HEAD"):
                await _answer(writer, 405, b"only GET\n", extra={"Allow": "GET, HEAD"})
            elif path == "/metrics":
                await self._metrics(writer, head_only=method == "HEAD")
            elif path == "/healthz":
                await _answer(writer, 200, b"ok\n")
            else:
                await _answer(writer, 404, b"not found: try /metrics or /healthz\n")
        except (ConnectionError, OSError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _metrics(self, writer: asyncio.StreamWriter, *, head_only: bool) -> None:
        try:
            body = await self.metrics.render()
        except BackendUnavailableError as exc:
            await _answer(writer, 503, f"job store unreachable: {exc}\n".encode(),
                          extra={"Retry-After": "5"})
            return
        await _answer(writer, 200, b"" if head_only else body, content_type=CONTENT_TYPE)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes, *,
                  content_type: str = "text/plain; charset=utf-8",
                  extra: dict[str, str] | None = None) -> None:
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)),
               "Connection": "close", **(extra or {})}
    head = f"HTTP/1.1 {status} {_REASONS[status]}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
