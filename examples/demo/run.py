"""`backburner demo`: the example app under uvicorn with an embedded worker, jobs in SQLite,
and, unless SMTP_HOST says otherwise, a local SMTP server whose mails the app lists."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
from pathlib import Path

import uvicorn

from examples.demo.settings import Settings, SettingsError
from examples.demo.smtp_sink import SmtpSink
from examples.demo.web import create_app


def exposure_warning(host: str) -> str | None:
    """The demo has no authentication, so it listens on loopback unless told otherwise;
    a warning when told otherwise."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (f"warning: the demo has no authentication and listens on {host}: anyone who "
            "can reach this address can start jobs and read every job and mail")


async def serve(host: str, port: int, settings: Settings) -> None:
    warning = exposure_warning(host)
    if warning is not None:
        print(warning, flush=True)
    sink: SmtpSink | None = None
    if not settings.smtp.configured:
        sink = await SmtpSink(host="127.0.0.1", fail_rate=settings.smtp_fail_rate).start()
        smtp = dataclasses.replace(settings.smtp, host=sink.host, port=sink.port,
                                   security="none", username=None, password=None)
        settings = dataclasses.replace(settings, smtp=smtp)
    app = create_app(settings, sink=sink)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    announcer = asyncio.create_task(_announce(server, host, settings, sink))
    try:
        await server.serve()
    finally:
        announcer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announcer
        if sink is not None:
            await sink.stop()


async def _announce(
    server: uvicorn.Server, host: str, settings: Settings, sink: SmtpSink | None
) -> None:
    # uvicorn tells "started" only by a flag, so it is polled.
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}" if ":" not in shown else f"http://[{shown}]:{port}"
    mail = (f"local SMTP sink on {sink.host}:{sink.port}" if sink is not None
            else f"SMTP server {settings.smtp.host}:{settings.smtp.port}")
    print(
        f"\nBackburner demo: jobs in {settings.jobs_url}, an embedded worker, {mail}\n"
        f"  app:             {base}/          (S16; the landing page is {base}/demo)\n"
        f"  API docs:        {base}/docs\n"
        f"  progress page:   {base}/progress\n"
        f"  dashboard:       {base}/dashboard/\n"
        f"  metrics:         {base}/metrics\n"
        f"  received mails:  {base}/mails\n"
        f"  try:  curl -X POST {base}/register -H 'content-type: application/json' "
        "-d '{\"email\": \"ada@example.com\", \"username\": \"ada\"}'\n"
        "Stop with Ctrl-C.\n",
        flush=True,
    )


def run_demo(host: str = "127.0.0.1", port: int = 8000, data_dir: Path | None = None) -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None
    if data_dir is not None:
        settings = dataclasses.replace(
            settings, data_dir=data_dir.resolve(),
            jobs_url=f"sqlite:///{data_dir.resolve()}/jobs.db",
        )
    # Ctrl-C: uvicorn shuts down gracefully, then re-raises the signal; that is no error.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, settings))
