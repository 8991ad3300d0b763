"""The demo's configuration, read from the environment once, passed everywhere explicitly.

Nothing here is a module-level singleton: `Settings.from_env()` builds one, tests build
their own with `dataclasses.replace`.

SMTP (the seeds hard-code a host and a password; we never do):
  SMTP_HOST, SMTP_PORT, SMTP_SECURITY (none | starttls | tls), SMTP_USER, SMTP_PASSWORD,
  SMTP_FROM, SMTP_CA_FILE (a CA bundle to trust, e.g. for a self-signed server),
  SMTP_TIMEOUT. Without SMTP_HOST, the web app (`backburner demo`, or uvicorn with
  `examples.demo.web:create_app`) starts a local sink and records its address in the data
  directory, where every worker of that directory finds it.
The demo:
  DEMO_DATA_DIR (jobs.db, mail.db, uploads/, log files; default ./demo-data),
  DEMO_JOBS_URL (default sqlite:///<data dir>/jobs.db),
  DEMO_SLOW_SECONDS (the seeds' "slow operation", 5), DEMO_STEP_SECONDS (one step of the
  long tracked task, 1), DEMO_MAX_UPLOAD_MB (100),
  DEMO_WEBHOOK_ALLOW (comma-separated `cidr` or `cidr:port` rules that webhooks and fetches
  may reach although internal, e.g. `127.0.0.1/32:8080`), DEMO_RETRY_BACKOFF (1 s base of
  the exponential backoff of webhooks and mail), DEMO_SMTP_FAIL_RATE (share of mails the
  local sink refuses with a temporary error: "sending fails sometimes", 0.1),
  DEMO_EMBEDDED_WORKER (1: run a worker in the web process; 0: separate workers only),
  DEMO_WORKER_LEASE (30 s: how soon the jobs of a web process that died run again),
  DEMO_REPORT_TZ (the time zone of the daily report's 09:00, Europe/Paris),
  DEMO_HEARTBEAT_SECONDS (the interval of the heartbeat report, 30 s; 0: no heartbeat).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from examples.demo.ssrf import AllowRule, parse_allow_list

Security = Literal["none", "starttls", "tls"]


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 25
    security: Security = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "Backburner demo <demo@backburner.invalid>"
    ca_file: str | None = None
    timeout: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    jobs_url: str
    smtp: SmtpSettings = SmtpSettings()
    slow_seconds: float = 5.0
    step_seconds: float = 1.0
    max_upload_bytes: int = 100 * 1024 * 1024
    webhook_allow: tuple[AllowRule, ...] = ()
    retry_backoff: float = 1.0
    """Base of the exponential backoff of webhooks and mail: retry n waits base x 2^(n-1)."""
    webhook_timeout: float = 10.0
    smtp_fail_rate: float = 0.1
    embedded_worker: bool = True
    """Run a worker inside the web process (DEMO_EMBEDDED_WORKER=0: only enqueue and read)."""
    worker_lease: float = 30.0
    """The embedded worker's lease: if the web process dies, its jobs run again after this."""
    report_tz: str = "Europe/Paris"
    """S3: the daily report runs at 09:00 in this zone."""
    heartbeat_seconds: float = 30.0
    """S3: the interval schedule, so ticks show in the demo (0: none)."""

    @property
    def upload_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def notification_log(self) -> Path:
        """Where `POST /send-notification/{email}` appends its line (the seed's log.txt)."""
        return self.data_dir / "log.txt"

    @property
    def activity_log(self) -> Path:
        """Lines written by the small seed tasks (A/B/C, request ids, print_msg)."""
        return self.data_dir / "activity.log"

    @property
    def mail_db(self) -> Path:
        return self.data_dir / "mail.db"

    @property
    def sink_file(self) -> Path:
        """Where the web process records its local SMTP sink's address for the workers
        (without SMTP_HOST); see `examples.demo.local_sink`."""
        return self.data_dir / "smtp-sink.json"

    def ensure_dirs(self) -> None:
        self.upload_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("DEMO_DATA_DIR", "demo-data")).resolve()
        security = env.get("SMTP_SECURITY", "none").lower()
        if security not in ("none", "starttls", "tls"):
            raise SettingsError("SMTP_SECURITY must be none, starttls or tls")
        smtp = SmtpSettings(
            host=env.get("SMTP_HOST", ""),
            port=_number(env, "SMTP_PORT", 465 if security == "tls" else 25, int),
            security=security,  # type: ignore[arg-type]
            username=env.get("SMTP_USER") or None,
            password=env.get("SMTP_PASSWORD") or None,
            sender=env.get("SMTP_FROM", SmtpSettings.sender),
            ca_file=env.get("SMTP_CA_FILE") or None,
            timeout=_number(env, "SMTP_TIMEOUT", 30.0, float),
        )
        return cls(
            data_dir=data_dir,
            jobs_url=env.get("DEMO_JOBS_URL", f"sqlite:///{data_dir}/jobs.db"),
            smtp=smtp,
            slow_seconds=_number(env, "DEMO_SLOW_SECONDS", 5.0, float),
            step_seconds=_number(env, "DEMO_STEP_SECONDS", 1.0, float),
            max_upload_bytes=int(_number(env, "DEMO_MAX_UPLOAD_MB", 100.0, float) * 1024 * 1024),
            webhook_allow=_allow(env),
            retry_backoff=_number(env, "DEMO_RETRY_BACKOFF", 1.0, float),
            smtp_fail_rate=_number(env, "DEMO_SMTP_FAIL_RATE", 0.1, float),
            embedded_worker=env.get("DEMO_EMBEDDED_WORKER", "1") not in ("0", "false", "no"),
            worker_lease=_number(env, "DEMO_WORKER_LEASE", 30.0, float) or 30.0,
            report_tz=_zone(env),
            heartbeat_seconds=_heartbeat(env),
        )


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must be >= 0")
    return value


def _allow(env: Mapping[str, str]) -> tuple[AllowRule, ...]:
    try:
        return parse_allow_list(env.get("DEMO_WEBHOOK_ALLOW", ""))
    except ValueError as exc:
        raise SettingsError(f"DEMO_WEBHOOK_ALLOW: {exc}") from None


def _zone(env: Mapping[str, str]) -> str:
    name = env.get("DEMO_REPORT_TZ") or "Europe/Paris"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"DEMO_REPORT_TZ: unknown time zone {name!r}") from None
    return name


def _heartbeat(env: Mapping[str, str]) -> float:
    seconds = _number(env, "DEMO_HEARTBEAT_SECONDS", 30.0, float)
    if not (seconds == 0 or 1 <= seconds < 366 * 86400):
        raise SettingsError("DEMO_HEARTBEAT_SECONDS must be 0 (off) or 1 s to a year")
    return seconds
