"""Sending mail over real SMTP with aiosmtplib, configured by `SmtpSettings` (S14).

Errors are sorted into the two kinds a job cares about: `TransientMailError` (a 4xx reply, a
dropped connection: worth retrying) and `PermanentMailError` (a 5xx reply such as an unknown
mailbox or bad credentials: retrying cannot help).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import aiosmtplib

from examples.demo.local_sink import SinkAddressError, read_sink
from examples.demo.settings import SmtpSettings


class MailError(Exception):
    pass


class TransientMailError(MailError):
    pass


class PermanentMailError(MailError):
    pass


def build_message(
    sender: str,
    to: str,
    subject: str,
    body: str,
    *,
    cc: Sequence[str] = (),
    attachments: Sequence[Path] = (),
    idempotency_key: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    if idempotency_key is not None:
        # The same id on every attempt of one job, so a receiving system can drop a
        # duplicate delivery (jobs run at least once).
        digest = hashlib.sha256(f"{idempotency_key}/{to}".encode()).hexdigest()[:32]
        message["Message-ID"] = f"<{digest}@backburner.demo>"
    message.set_content(body)
    for path in attachments:
        message.add_attachment(path.read_bytes(), maintype="text", subtype="csv",
                               filename=path.name)
    return message


class Mailer:
    def __init__(self, settings: SmtpSettings, sink_file: Path | None = None) -> None:
        """`sink_file`: without SMTP_HOST, where the demo's web process records its local
        sink (`examples.demo.local_sink`); mail goes there."""
        self.settings = settings
        self.sink_file = sink_file

    @staticmethod
    def _tls_context(cfg: SmtpSettings) -> ssl.SSLContext | None:
        if cfg.security == "none":
            return None
        return ssl.create_default_context(cafile=cfg.ca_file)

    async def server(self) -> SmtpSettings:
        """The configured server, else the demo's local sink as recorded now (read on every
        mail: the web process may have restarted on another port)."""
        if self.settings.configured:
            return self.settings
        if self.sink_file is None:
            raise PermanentMailError("no SMTP server is configured (SMTP_HOST)")
        try:
            address = await asyncio.to_thread(read_sink, self.sink_file)
        except (SinkAddressError, OSError) as exc:
            raise TransientMailError(str(exc)) from None
        if address is None:
            # Temporary: the web process may simply not be up yet; the job retries.
            raise TransientMailError(
                f"SMTP_HOST is not set and no demo SMTP sink is running: none recorded in "
                f"{self.sink_file} (start the demo's web app with the same DEMO_DATA_DIR)")
        return dataclasses.replace(self.settings, host=address.host, port=address.port,
                                   security="none", username=None, password=None)

    async def send(self, message: EmailMessage) -> None:
        cfg = await self.server()
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password,
                use_tls=cfg.security == "tls",
                start_tls=cfg.security == "starttls",
                tls_context=self._tls_context(cfg),
                timeout=cfg.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            kind = PermanentMailError if all(c >= 500 for c in codes) else TransientMailError
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise kind(detail) from None
        except aiosmtplib.SMTPResponseException as exc:
            kind = PermanentMailError if exc.code >= 500 else TransientMailError
            raise kind(f"SMTP {exc.code}: {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientMailError(f"{type(exc).__name__}: {exc}") from None
        # A server may accept some recipients and refuse others; a mail whose addressee
        # was refused was not delivered, even if a Cc was.
        to = {a.strip().lower() for a in str(message["To"]).split(",")}
        missed = {r: reply for r, reply in refused.items() if r.lower() in to}
        if missed:
            codes = [reply.code for reply in missed.values()]
            kind = PermanentMailError if all(c >= 500 for c in codes) else TransientMailError
            raise kind("; ".join(f"{r}: {reply.code} {reply.message}"
                                 for r, reply in missed.items()))
