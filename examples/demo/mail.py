"""Sending mail over real SMTP with aiosmtplib, configured by `SmtpSettings` (S14).

Errors are sorted into the two kinds a job cares about: `TransientMailError` (a 4xx reply, a
dropped connection: worth retrying) and `PermanentMailError` (a 5xx reply such as an unknown
mailbox or bad credentials: retrying cannot help).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import aiosmtplib

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
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.security == "none":
            return None
        return ssl.create_default_context(cafile=self.settings.ca_file)

    async def send(self, message: EmailMessage) -> None:
        cfg = self.settings
        if not cfg.configured:
            raise PermanentMailError("no SMTP server is configured (SMTP_HOST)")
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password,
                use_tls=cfg.security == "tls",
                start_tls=cfg.security == "starttls",
                tls_context=self._tls_context(),
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
