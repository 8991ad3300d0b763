"""A local SMTP server (aiosmtpd) that keeps what it receives: the demo's mailbox when no
real SMTP server is configured, and the real server the tests send to.

It behaves like a picky real server on purpose: a mailbox whose name starts with `bounce`
is refused for good (550), and a share `fail_rate` of messages is refused for now (451), so
the demo shows retries and failures ("sending fails sometimes", S12).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
import warnings
from dataclasses import dataclass
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    to: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    attachments: tuple[str, ...]
    received_at: float


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.split("@", 1)[0].lower().startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.sink.take_failure():
            return "451 4.3.0 temporary failure, try again later"
        raw = envelope.original_content or b""
        parsed: Any = message_from_bytes(raw, policy=policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        self.sink.add(ReceivedMail(
            mail_from=str(envelope.mail_from), to=tuple(envelope.rcpt_tos),
            subject=str(parsed.get("Subject", "")),
            body=body.get_content().rstrip("\r\n") if body is not None else "",
            message_id=str(parsed.get("Message-ID", "")),
            attachments=tuple(p.get_filename() or "" for p in parsed.iter_attachments()),
            received_at=time.time(),
        ))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fail_rate: float = 0.0,
        seed: int | None = None,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        """`credentials`: require AUTH LOGIN/PLAIN with them. `tls`: offer STARTTLS with this
        server context, or, with `implicit_tls`, speak TLS from the first byte (port 465)."""
        self.host = host
        self.port = port
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.credentials = credentials
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.fail_next = 0
        """Refuse this many next messages with 451 (tests use it for a retried send)."""
        self._mails: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._server: asyncio.base_events.Server | None = None

    def take_failure(self) -> bool:
        """Whether to refuse this message for now: the next `fail_next` ones, then a share
        `fail_rate` at random."""
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return True
        return self.rng.random() < self.fail_rate

    def add(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._mails.append(mail)

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    def _protocol(self) -> SMTP:
        options: dict[str, Any] = {"hostname": "backburner-demo-sink"}
        if self.tls is not None and not self.implicit_tls:
            options.update(tls_context=self.tls, require_starttls=True)
        if self.credentials is not None:
            # With implicit TLS aiosmtpd cannot tell the line is encrypted and would hide
            # AUTH; it is encrypted from the first byte, so no STARTTLS is required.
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.tls is not None and not self.implicit_tls)
        with warnings.catch_warnings():
            # Its warning about AUTH without TLS is wrong for implicit TLS (see above).
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SMTP(_Handler(self), **options)

    async def start(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self.host, self.port,
            ssl=self.tls if self.implicit_tls else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmtpSink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
