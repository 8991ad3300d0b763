"""`backburner demo`: the example app under uvicorn with an embedded worker, jobs in SQLite,
and, unless SMTP_HOST says otherwise, a local SMTP server whose mails the app lists; prints
the URLs to open, the demo's landing page first."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import shlex
import sys
from pathlib import Path
from typing import Any

import uvicorn

import examples
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
    # Without SMTP_HOST the app starts its local SMTP sink itself, so this process and any
    # separate worker deliver to the same one (`examples.demo.local_sink`).
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    announcer = asyncio.create_task(_announce(server, host, settings, app))
    try:
        await server.serve()
    finally:
        announcer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announcer


async def _announce(server: uvicorn.Server, host: str, settings: Settings, app: Any) -> None:
    # uvicorn tells "started" only by a flag, so it is polled.
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(announcement(host, port, settings, app.state.demo_sink), flush=True)


def announcement(host: str, port: int, settings: Settings, sink: SmtpSink | None) -> str:
    """What `backburner demo` prints once it listens: the landing page first (it links to
    everything else), then the pages worth opening, then how to add workers."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://{shown}:{port}" if ":" not in shown else f"http://[{shown}]:{port}"
    mail = (f"mail to the local SMTP sink on {sink.host}:{sink.port}" if sink is not None
            else f"mail to the SMTP server {settings.smtp.host}:{settings.smtp.port}")
    worker = ("an embedded worker" if settings.embedded_worker
              else "no embedded worker (DEMO_EMBEDDED_WORKER=0: start one as below)")
    lines = [
        "",
        f"Backburner demo: jobs in {settings.jobs_url}, {worker}, {mail}",
        f"  open this first:  {base}/demo   (the demo's page: links to everything)",
        f"  progress page:    {base}/progress   (click \"Start a long job\")",
        f"  dashboard:        {base}/dashboard/",
    ]
    if sink is not None:
        lines.append(f"  received mails:   {base}/mails")
    lines += [
        f"  API docs:         {base}/docs   (every endpoint, to try)",
        f"  metrics:          {base}/metrics   (Prometheus)",
        f"  more workers:     {_worker_command(settings)}",
        f"  try:  curl -X POST {base}/register -H 'content-type: application/json' "
        "-d '{\"email\": \"ada@example.com\", \"username\": \"ada\"}'",
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def _worker_command(settings: Settings) -> str:
    """A `backburner worker` for this demo, as typed in a shell: the same data directory
    (jobs and the sink's address), from the directory `examples` is imported from."""
    root = Path(examples.__file__).resolve().parent.parent
    program = Path(sys.executable).parent / "backburner"  # the one running now, if there
    shown = "backburner"
    if program.is_file():
        shown = str(program.relative_to(root) if program.is_relative_to(root) else program)
    command = (f"DEMO_DATA_DIR={shlex.quote(str(settings.data_dir))} "
               f"{shlex.quote(shown)} worker examples.demo.worker:create_jobs")
    if root != Path.cwd().resolve():
        command = f"cd {shlex.quote(str(root))} && {command}"
    same = [name for name, needed in (
        ("DEMO_JOBS_URL", settings.jobs_url != f"sqlite:///{settings.data_dir}/jobs.db"),
        ("SMTP_*", settings.smtp.configured)) if needed]
    if same:  # not printed: they may hold passwords
        command += f"   (with the same {' and '.join(same)})"
    return command


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
