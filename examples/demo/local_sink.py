"""The demo's own mailbox when no SMTP server is configured: the web process runs a local
SMTP sink and records its address in the data directory; every worker of that data
directory, embedded or a separate `backburner worker` process, reads it there and delivers
to it, so `/mails` shows what any of them sent.

The sink listens on a free port (a fixed one would collide with a second demo or a test run
on the same machine), so the address can only be known once it runs: hence the file,
`<DEMO_DATA_DIR>/smtp-sink.json`, written when the web process starts and removed when it
stops. A worker reads it on each mail, so it follows a restarted web process to its new
port. One web process per data directory: a second one would take the file over.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink


class SinkAddressError(ValueError):
    """The recorded address cannot be used; the message names the file."""


@dataclass(frozen=True)
class SinkAddress:
    host: str
    port: int


def record_sink(path: Path, address: SinkAddress) -> None:
    """Write the address whole or not at all: a worker never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps({"host": address.host, "port": address.port}),
                       encoding="utf-8")
    os.replace(partial, path)


def read_sink(path: Path) -> SinkAddress | None:
    """The recorded address, or None when no sink is running (no file)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        host, port = str(data["host"]), data["port"]
        # Only loopback: the sink never listens elsewhere, and a file that says otherwise
        # must not send the demo's mail off the machine.
        loopback = ipaddress.ip_address(host).is_loopback
    except (ValueError, TypeError, KeyError) as exc:
        raise SinkAddressError(f"{path} does not hold a demo SMTP sink's address: {exc}") from None
    if not loopback or not isinstance(port, int) or isinstance(port, bool) \
            or not 0 < port < 65536:
        raise SinkAddressError(f"{path}: {host}:{port} is not a local SMTP sink's address")
    return SinkAddress(host, port)


def forget_sink(path: Path, address: SinkAddress) -> None:
    """Remove the file if it still names this sink (another web process may have taken it
    over since)."""
    with contextlib.suppress(SinkAddressError, OSError):
        if read_sink(path) == address:
            path.unlink()


@contextlib.asynccontextmanager
async def local_sink(settings: Settings) -> AsyncIterator[SmtpSink]:
    """Run the sink (refusing `DEMO_SMTP_FAIL_RATE` of the mails for now, as a real server
    sometimes does) with its address recorded for the workers."""
    async with SmtpSink(host="127.0.0.1", fail_rate=settings.smtp_fail_rate) as sink:
        address = SinkAddress(sink.host, sink.port)
        record_sink(settings.sink_file, address)
        try:
            yield sink
        finally:
            forget_sink(settings.sink_file, address)
