"""Every task of the demo, registered on one Backburner app by `register_tasks`.

Tasks are closures over `Services` (settings, mailer, mail log, address policy) rather than
module globals, each registered under a fixed `demo.*` name: the web process and any
`backburner worker` process build the same registry from the same settings. The plain
module-level functions at the top are the seeds' `add_task(func, ...)` shape; they are
registered too (`register_background`) so that a separate worker process knows them.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import logging
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx2
from pydantic import BeforeValidator, Field, StrictFloat, StrictInt

from backburner import Backburner, Backoff, JobContext, Task
from backburner.fastapi import register_background
from examples.demo import reports
from examples.demo.mail import (
    Mailer,
    PermanentMailError,
    TransientMailError,
    build_message,
)
from examples.demo.maillog import MailLog
from examples.demo.settings import Settings
from examples.demo.ssrf import AddressPolicy, guarded_client
from examples.demo.uploads import STORED_NAME

log = logging.getLogger("examples.demo")


# -- plain functions, as in the seeds --------------------------------------------------------
def write_log(log_file: str, message: str) -> None:
    """S13: append a line to the notification log."""
    with open(log_file, "a", encoding="utf-8") as out:
        out.write(message + "\n")


def log_request(log_file: str, request_id: str) -> None:
    """S8: record a request id, added from a shared dependency."""
    write_log(log_file, f"request {request_id}")


def _not_an_int(value: Any) -> Any:
    # Without this an integer too large for `Int` would be taken as a float instead of
    # refused: the kind of a number must never change on the way through.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("an integer outside -2^62..2^62-1 (its double must fit in 64 bits)")
    return value


Int = Annotated[StrictInt, Field(ge=-(2**62), le=2**62 - 1)]
Float = Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-8e307, le=8e307),
                  BeforeValidator(_not_an_int)]
Number = Int | Float
"""S9's numbers: an integer stays an integer and a float a float (`[1, 2.5]` doubles to
`[2, 5.0]`), neither bool nor string is taken for a number, and the double of each fits the
JSON store (orjson: 64-bit integers, finite floats; it would write an infinity as null)."""


@dataclass(frozen=True)
class Services:
    settings: Settings
    mailer: Mailer
    mail_log: MailLog
    policy: AddressPolicy
    tls: ssl.SSLContext
    """For outgoing HTTPS, made once."""

    def http(self, timeout: float = 10.0) -> httpx2.AsyncClient:
        """A client for a job's outgoing requests, through the SSRF guard."""
        return guarded_client(self.policy, timeout=timeout, tls=self.tls)


@dataclass(frozen=True)
class DemoTasks:
    """The registered tasks, typed, for the routes to enqueue."""

    services: Services
    send_email: Task[..., str]
    send_welcome: Task[..., str]
    print_msg: Task[..., str]
    long_task: Task[..., dict[str, int]]
    process_data: Task[..., dict[str, Any]]
    risky_task: Task[..., str]
    task_a: Task[..., str]
    task_b: Task[..., str]
    task_c: Task[..., str]
    fetch_url: Task[..., dict[str, Any]]
    send_webhook: Task[..., dict[str, Any]]
    send_order_email: Task[..., str]
    send_notification: Task[..., str]
    mail_one: Task[..., str]
    mail_bulk: Task[..., dict[str, int]]
    count_rows: Task[..., dict[str, Any]]
    daily_report: Task[..., dict[str, Any]]
    heartbeat: Task[..., dict[str, Any]] | None
    """None when DEMO_HEARTBEAT_SECONDS is 0."""


class WebhookStatusError(Exception):
    """The target answered with an error status: worth another try."""


def register_tasks(jobs: Backburner, settings: Settings) -> DemoTasks:
    services = Services(settings, Mailer(settings.smtp, settings.sink_file),
                        MailLog(settings.mail_db),
                        AddressPolicy(settings.webhook_allow),
                        httpx2.create_ssl_context(trust_env=False))
    mailer, mail_log = services.mailer, services.mail_log
    backoff = Backoff(base=settings.retry_backoff, factor=2, jitter=0.0)
    activity = str(settings.activity_log)
    register_background(jobs, write_log, log_request)

    async def deliver(ctx: JobContext, to: str, subject: str, body: str, **extra: Any) -> None:
        """Send one mail and record the outcome; a temporary failure is retried by the job
        and recorded as failed only on its last attempt."""
        message = build_message(settings.smtp.sender, to, subject, body,
                                idempotency_key=ctx.idempotency_key, **extra)
        try:
            await mailer.send(message)
        except TransientMailError as exc:
            if ctx.attempt >= ctx.max_attempts:
                await mail_log.failed(ctx.job_id, to, subject, str(exc))
            raise
        except PermanentMailError as exc:
            await mail_log.failed(ctx.job_id, to, subject, str(exc))
            raise
        await mail_log.sent(ctx.job_id, to, subject)

    mail_options: dict[str, Any] = {"retries": 3, "backoff": backoff,
                                    "retry_on": TransientMailError}

    # -- S1, S2: the slow mail -----------------------------------------------------------------
    @jobs.task(name="demo.send_email", **mail_options)
    async def send_email(email: str, ctx: JobContext) -> str:
        """Pretend the mail takes a while (the seeds sleep 5 s), then send it over SMTP."""
        await asyncio.sleep(settings.slow_seconds)
        await deliver(ctx, email, "Hello from Backburner", f"Hello {email}, this mail was "
                      "sent by a background job.")
        return f"Email sent to {email}"

    # -- S5, S14: welcome mail -----------------------------------------------------------------
    @jobs.task(name="demo.send_welcome", **mail_options)
    async def send_welcome(email: str, username: str, ctx: JobContext) -> str:
        await deliver(ctx, email, "Welcome!", f"Welcome {username}, thanks for registering.")
        return f"welcome mail sent to {email}"

    # -- S16: print after a delay, with an argument -------------------------------------------
    @jobs.task(name="demo.print_msg")
    def print_msg(name: str) -> str:
        time.sleep(settings.slow_seconds)  # a sync task runs in a thread: fine to block
        text = f"Hello {name}~"
        print(text, flush=True)
        log.info("print_msg: %s", text)
        write_log(activity, text)
        return text

    # -- S9, S17, S18: a long task with progress ----------------------------------------------
    @jobs.task(name="demo.long_task", retries=3)
    async def long_task(ctx: JobContext, steps: int = 10) -> dict[str, int]:
        """Work in `steps` steps, reporting progress after each (10 % per step for 10)."""
        for step in range(1, steps + 1):
            await asyncio.sleep(settings.step_seconds)
            await ctx.progress(step, total=steps, message=f"step {step} of {steps}")
        return {"steps": steps}

    @jobs.task(name="demo.process_data", retries=3)
    async def process_data(data: list[Number], ctx: JobContext) -> dict[str, Any]:
        """Double every number, with progress; integers stay integers."""
        results: list[int | float] = []
        for index, item in enumerate(data, 1):
            await asyncio.sleep(settings.step_seconds / 2)
            results.append(item * 2)
            await ctx.progress(index, total=len(data))
        return {"processed": len(results), "results": results}

    # -- S10: a task that fails ---------------------------------------------------------------
    @jobs.task(name="demo.risky_task", retries=0)
    def risky_task(data: str) -> str:
        if data == "error":
            # Not caught here (the seed logs and swallows it): the worker records type,
            # message and traceback on the job and logs the failure.
            raise ValueError("processing failed")
        write_log(activity, f"processed {data}")
        return f"processed {data}"

    # -- S6: A, B, C in the order added -------------------------------------------------------
    def make_step(letter: str) -> Task[..., str]:
        def step(data: str) -> str:
            write_log(activity, f"task {letter}: {data}")
            return f"{letter}:{data}"

        return jobs.task(name=f"demo.task_{letter.lower()}")(step)

    # -- S7: async fetch ----------------------------------------------------------------------
    @jobs.task(name="demo.fetch_url", retries=1, backoff=backoff, retry_on=httpx2.TransportError)
    async def fetch_url(url: str) -> dict[str, Any]:
        async with services.http() as client:
            response = await client.get(url)
        return {"url": url, "status_code": response.status_code}

    # -- S11: webhook, 3 tries, 1 s x 2^attempt -----------------------------------------------
    @jobs.task(name="demo.send_webhook", retries=2, backoff=backoff,
               retry_on=(httpx2.TransportError, WebhookStatusError))
    async def send_webhook(url: str, data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        async with services.http(settings.webhook_timeout) as client:
            response = await client.post(
                url, json=data, headers={"Idempotency-Key": ctx.idempotency_key}
            )
        if response.status_code >= 400:
            raise WebhookStatusError(f"{url} answered {response.status_code}")
        return {"status_code": response.status_code, "attempt": ctx.attempt}

    # -- S8: TaskManager's two tasks -----------------------------------------------------------
    @jobs.task(name="demo.send_order_email", **mail_options)
    async def send_order_email(email: str, content: str, ctx: JobContext) -> str:
        await deliver(ctx, email, "Your order", content)
        return f"order mail sent to {email}"

    @jobs.task(name="demo.send_notification")
    def send_notification(user_id: int, message: str) -> str:
        write_log(activity, f"notify user {user_id}: {message}")
        return f"notified {user_id}"

    # -- S12: the email service ---------------------------------------------------------------
    @jobs.task(name="demo.mail_one", retries=2, backoff=backoff, retry_on=TransientMailError)
    async def mail_one(
        to: str, subject: str, body: str, ctx: JobContext,
        cc: list[str] | None = None, attachments: list[str] | None = None,
    ) -> str:
        files = [settings.upload_dir / name for name in attachments or []
                 if STORED_NAME.match(name)]
        await deliver(ctx, to, subject, body, cc=cc or (), attachments=files)
        return f"sent to {to}"

    @jobs.task(name="demo.mail_bulk", retries=2, backoff=backoff)
    async def mail_bulk(
        recipients: list[str], subject: str, body: str, ctx: JobContext
    ) -> dict[str, int]:
        """One job for the batch. A recipient that fails temporarily gets two more tries
        inside the job; each recipient's outcome is recorded, so a rerun of the job (after a
        crash) skips those already sent."""
        done = await mail_log.sent_in(ctx.job_id)
        sent = failed = 0
        for index, to in enumerate(recipients):
            if to in done:
                sent += 1
                continue
            message = build_message(settings.smtp.sender, to, subject, body,
                                    idempotency_key=ctx.idempotency_key)
            error: str | None = None
            for attempt in range(3):
                try:
                    await mailer.send(message)
                    error = None
                    break
                except TransientMailError as exc:
                    error = str(exc)
                    await asyncio.sleep(settings.retry_backoff * 2**attempt)
                except PermanentMailError as exc:
                    error = str(exc)
                    break
            if error is None:
                sent += 1
                await mail_log.sent(ctx.job_id, to, subject)
            else:
                failed += 1
                await mail_log.failed(ctx.job_id, to, subject, error)
            await ctx.progress(index + 1, total=len(recipients))
        return {"sent": sent, "failed": failed}

    # -- S15: count the rows of an uploaded CSV, streaming ------------------------------------
    @jobs.task(name="demo.count_rows", retries=2, retry_on=OSError)
    def count_rows(stored_name: str, filename: str, ctx: JobContext) -> dict[str, Any]:
        """Read the file line by line (never whole), report progress by bytes read."""
        if not STORED_NAME.match(stored_name):
            raise ValueError("not a stored upload name")
        path = settings.upload_dir / stored_name
        size = path.stat().st_size
        read = 0

        def lines() -> Iterator[str]:
            nonlocal read
            with path.open("rb") as raw:
                for number, line in enumerate(raw):
                    read += len(line)
                    if number == 0:
                        # Excel writes a byte-order mark before the first column's name.
                        line = line.removeprefix(codecs.BOM_UTF8)
                    if number % 50_000 == 0:
                        ctx.set_progress(read, total=size or 1, message="counting rows")
                    yield line.decode("utf-8", "replace")

        rows = -1  # the first row is the header, as pandas counts
        columns: list[str] = []
        for row in csv.reader(lines()):
            if rows == -1:
                columns = row[:50]
            rows += 1
        ctx.set_progress(size, total=size or 1, message="done")
        return {"filename": filename, "stored_name": stored_name, "rows": max(rows, 0),
                "columns": columns, "bytes": size}

    # -- S3: periodic jobs (Celery beat) --------------------------------------------------------
    async def tick_of(ctx: JobContext) -> str | None:
        """The tick this run belongs to, from its unique key `periodic:<name>@<tick>` (None
        for a run started by hand)."""
        record = await jobs.get_job(ctx.job_id)
        key = record.unique_key if record is not None else None
        return key.rpartition("@")[2] if key and key.startswith("periodic:") else None

    @jobs.periodic(cron="0 9 * * *", tz=settings.report_tz, name="daily-report")
    @jobs.task(name="demo.daily_report", retries=2)
    async def daily_report(ctx: JobContext) -> dict[str, Any]:
        """Every morning at 09:00 (DEMO_REPORT_TZ): yesterday's jobs, registrations and
        failures, stored as the job's result."""
        report = await reports.daily_report(jobs, ZoneInfo(settings.report_tz),
                                            datetime.now(UTC))
        return {"tick": await tick_of(ctx), **report}

    heartbeat: Task[..., dict[str, Any]] | None = None
    if settings.heartbeat_seconds:
        every = settings.heartbeat_seconds

        @jobs.periodic(every=every, name="heartbeat")
        @jobs.task(name="demo.heartbeat", retries=0)
        async def beat(ctx: JobContext) -> dict[str, Any]:
            """Every DEMO_HEARTBEAT_SECONDS: the jobs created since the previous beat."""
            now = datetime.now(UTC)
            summary = await reports.summarize(jobs, now - timedelta(seconds=every), now)
            return {"tick": await tick_of(ctx), "at": now.isoformat(timespec="seconds"),
                    "jobs": summary["jobs"], "by_state": summary["by_state"]}

        heartbeat = beat

    return DemoTasks(
        services=services, send_email=send_email, send_welcome=send_welcome,
        print_msg=print_msg, long_task=long_task, process_data=process_data,
        risky_task=risky_task, task_a=make_step("A"), task_b=make_step("B"),
        task_c=make_step("C"), fetch_url=fetch_url, send_webhook=send_webhook,
        send_order_email=send_order_email, send_notification=send_notification,
        mail_one=mail_one, mail_bulk=mail_bulk, count_rows=count_rows,
        daily_report=daily_report, heartbeat=heartbeat,
    )


def build_jobs(settings: Settings) -> tuple[Backburner, DemoTasks]:
    """The Backburner app of the demo with every task registered."""
    settings.ensure_dirs()
    jobs = Backburner(settings.jobs_url, poll_interval=1.0)
    return jobs, register_tasks(jobs, settings)
