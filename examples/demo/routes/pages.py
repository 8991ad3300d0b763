"""The demo's own pages: the live progress page (S18), the mailbox of the local SMTP sink,
a landing page, and `/monitor` (S4: queues, states, workers, failures, as JSON; the web
dashboard, `backburner.dashboard`, is mounted at `/dashboard` by `web.py`).

HTML is static or built with every value escaped; scripts come from /static only, so the
pages work under a Content-Security-Policy without 'unsafe-inline'.

Progress page element ids (stable, for browser tests): `#start` (button), `#steps` (number
input), `#job-id`, `#bar-ws` and `#bar-sse` (`<progress>` elements, value 0-100),
`#pct-ws` and `#pct-sse` (text like `40%`), `#state-ws` and `#state-sse` (the job state:
idle, pending, running, completed, failed, cancelled), `#error`.
"""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from backburner.fastapi.schemas import JobOut
from backburner.job import JobState
from examples.demo.routes.common import demo_sink
from examples.demo.routes.types import ERRORS
from examples.demo.tasks import DemoTasks

STATIC = Path(__file__).resolve().parent.parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; "
       "img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"}


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="/static/demo.css"></head><body><main>{body}</main>'
        "</body></html>",
        headers=SECURITY_HEADERS,
    )


def router(tasks: DemoTasks) -> APIRouter:
    api = APIRouter(tags=["demo pages"], responses=ERRORS)
    jobs = tasks.long_task.app
    smtp = tasks.services.settings.smtp

    @api.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> RedirectResponse:
        # Browsers ask for /favicon.ico on their own, before reading any page.
        return RedirectResponse("/static/favicon.svg", 308)

    @api.get("/progress", response_class=FileResponse, include_in_schema=False)
    async def progress_page() -> FileResponse:
        return FileResponse(STATIC / "progress.html", headers=SECURITY_HEADERS)

    @api.get("/demo", response_class=HTMLResponse, include_in_schema=False)
    async def landing() -> HTMLResponse:
        """The first page to open (`backburner demo` prints it first): where everything is.
        Only pages that start nothing: `GET /` (S16) enqueues a job on every visit."""
        links = [("/progress", "live progress bars (WebSocket and SSE): start a long job"),
                 ("/dashboard/", "the dashboard: jobs, failures, queues, workers, schedules"),
                 ("/mails", "mails received by the local SMTP server"),
                 ("/docs", "every endpoint, to try out"), ("/jobs", "all jobs (JSON)"),
                 ("/monitor", "queues, states, workers, failures (JSON)"),
                 ("/email/stats", "email service stats (JSON)"),
                 ("/metrics", "Prometheus metrics")]
        items = "".join(f'<li><a href="{href}">{html.escape(href)}</a>: {html.escape(text)}'
                        "</li>" for href, text in links)
        return _page("Backburner demo", "<h1>Backburner demo</h1><p>Every scenario of the "
                     "seed tutorials on durable Backburner jobs. Start a long job on the "
                     "progress page, or send a request from the API docs, then watch its job "
                     f"on the dashboard.</p><ul>{items}</ul>")

    @api.get("/mails", response_class=HTMLResponse, include_in_schema=False)
    async def mails_page(request: Request) -> HTMLResponse:
        sink = demo_sink(request)
        if sink is None:
            where = html.escape(f"{smtp.host}:{smtp.port}")
            return _page("Mails", f"<h1>Mails</h1><p>Mail goes to the configured SMTP server "
                                  f"{where}; this demo keeps no copy.</p>")
        mails = sink.mails
        where = html.escape(f"{sink.host}:{sink.port}")
        if not mails:
            return _page("Mails", f"<h1>Mails received by the local SMTP server ({where})</h1>"
                                  '<p id="no-mails">No mails yet. The mails the demo\'s jobs '
                                  "send show up here: register a user with "
                                  '<code>POST /register</code> (try it in the <a href="/docs">'
                                  'API docs</a>), then <a href="/mails">reload</a>.</p>')
        rows = "".join(
            "<tr>"
            f"<td>{html.escape(time.strftime('%H:%M:%S', time.localtime(m.received_at)))}</td>"
            f"<td>{html.escape(', '.join(m.to))}</td><td>{html.escape(m.subject)}</td>"
            f"<td><pre>{html.escape(m.body)}</pre></td>"
            f"<td>{html.escape(', '.join(m.attachments))}</td></tr>"
            for m in reversed(mails)
        )
        return _page("Mails", f"<h1>Mails received by the local SMTP server ({where})</h1>"
                              f'<p><a href="/mails">reload</a></p><table><thead><tr>'
                              "<th>time</th><th>to</th><th>subject</th><th>body</th>"
                              f"<th>attachments</th></tr></thead><tbody>{rows}</tbody></table>")

    @api.get("/mails.json", include_in_schema=False)
    async def mails_json(request: Request) -> list[dict[str, Any]]:
        sink = demo_sink(request)
        return [] if sink is None else [
            {"to": list(m.to), "subject": m.subject, "body": m.body,
             "message_id": m.message_id, "attachments": list(m.attachments),
             "received_at": datetime.fromtimestamp(m.received_at, UTC).isoformat()}
            for m in sink.mails
        ]

    @api.get("/monitor", tags=["monitoring"])
    async def monitor() -> dict[str, Any]:
        """S4: jobs per queue and state, live workers, the latest failures with errors."""
        counts: dict[str, dict[str, int]] = {}
        for (queue, state), n in (await jobs.backend.counts()).items():
            counts.setdefault(queue, {})[state.value] = n
        workers = await jobs.backend.list_workers()
        failed = await jobs.list_jobs(states=[JobState.FAILED], limit=10)
        return {
            "queues": counts,
            "workers": [{"id": w.id, "hostname": w.hostname, "pid": w.pid,
                         "queues": list(w.queues), "concurrency": w.concurrency}
                        for w in workers],
            "recent_failures": [
                {"id": r.id, "task": r.task, "reason": r.reason.value if r.reason else None,
                 "attempts": r.attempt,
                 # The router's own conversion, so an error reads here as at /jobs/{id}
                 # (times in ISO 8601, not the store's epoch seconds).
                 "errors": [e.model_dump(mode="json") for e in JobOut.of(r).errors]}
                for r in failed.jobs
            ],
        }

    return api
