"""The dashboard in a real browser: Playwright drives Debian's chromium headless against an
app that mounts it (uvicorn on a free loopback port, an embedded worker, jobs in a tmp SQLite
file, a Redis prefix or a PostgreSQL schema: the scenario runs on each; HTTP Basic users
`ann` (admin) and `rob` (read)).

As admin: list jobs, filter them (the filter lands in the URL), see the failures grouped,
open a job, retry a failed job and see it complete, enqueue from the generated form and
watch its progress move live over SSE, pause a queue (its new job waits until it is
resumed), pause a schedule, cancel a ticked selection and retry everything matching a
filter after its count and confirmation, see the live refresh stop while the tab is hidden.
As read-only: no action shows, and a forged POST is refused with 403. Any console error (a
CSP violation shows as one) fails the test. The SQLite run saves each page to
tests/browser/artifacts/dashboard/<page>.png, or with BACKBURNER_DASHBOARD_SCREENSHOTS=docs
to docs/screenshots/<page>.png (the README's pictures)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from demo_harness import serve
from fastapi import FastAPI
from services import SERVER_BACKENDS, backend_url
from test_progress_page import CHROMIUM, CHROMIUM_ARGS, require_chromium

from backburner import Backburner, JobContext
from backburner.backends import open_backend
from backburner.dashboard import basic_auth, mount_dashboard
from backburner.fastapi import backburner_lifespan

# Test runs keep their pictures as artefacts (ignored by git), so running the suite never
# leaves the work tree dirty; BACKBURNER_DASHBOARD_SCREENSHOTS=docs refreshes the README's.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("BACKBURNER_DASHBOARD_SCREENSHOTS") == "docs"
    else Path(__file__).resolve().parent / "artifacts" / "dashboard"
)
USERS = {"ann": ("admin-pw", "admin"), "rob": ("read-pw", "read")}


def build(url: str) -> tuple[FastAPI, Backburner, dict[str, Any]]:
    jobs = Backburner(url, poll_interval=0.2)
    switch = {"fail": True}

    @jobs.task(name="reports.build", retries=0)
    async def build_report(ctx: JobContext, steps: int = 6, pause: float = 0.35) -> dict[str, int]:
        """Builds a report in steps, reporting progress."""
        for i in range(1, steps + 1):
            await asyncio.sleep(pause)
            await ctx.progress(i, steps, f"section {i} of {steps}")
        return {"sections": steps}

    @jobs.task(name="billing.charge", retries=0, queue="billing")
    async def charge(customer: str, cents: int) -> str:
        if switch["fail"]:
            raise RuntimeError(f"card declined for {customer}")
        return f"charged {customer} {cents}"

    @jobs.periodic(every=3600, name="hourly-cleanup")
    @jobs.task(name="maintenance.cleanup")
    async def cleanup() -> int:
        return 0

    # No scheduler: a tick of the hourly schedule (at the top of any hour the test runs in)
    # would add a job the counts below do not expect. Pause/resume/trigger need none.
    api = FastAPI(lifespan=backburner_lifespan(jobs, worker=True, concurrency=4, lease=5,
                                               scheduler=False))
    mount_dashboard(api, jobs, prefix="/dashboard", auth=basic_auth(USERS), refresh=1,
                    sample_interval=0.5)
    return api, jobs, {"build": build_report, "charge": charge, "switch": switch}


@pytest.fixture(params=["sqlite", *SERVER_BACKENDS])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store of the test's own (file, key prefix or schema), removed afterwards."""
    url = backend_url(request.param, tmp_path)
    yield url
    backend = open_backend(url)
    destroy = getattr(backend, "destroy", None)
    if destroy is not None:
        await backend.open()
        await destroy()
    await backend.close()


@pytest.mark.timeout(120)
async def test_the_dashboard_in_chromium(store_url: str) -> None:
    require_chromium()
    from playwright.async_api import Page, async_playwright, expect

    # The pictures in the README come from the SQLite run.
    keep = store_url.startswith("sqlite")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    api, jobs, tasks = build(store_url)
    errors: list[str] = []
    refused: list[str] = []
    icons: list[int] = []

    def watch(page: Page) -> None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and
                "Failed to load resource" not in m.text else None)
        # Every response, the icon the layout links included (no 404 for a favicon).
        page.on("response", lambda r: refused.append(f"{r.status} {r.url.split('?')[0]}")
                if r.status >= 400 else None)
        page.on("response", lambda r: icons.append(r.status)
                if r.url.endswith("/static/favicon.svg") else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))

    async def shot(page: Page, name: str) -> None:
        if keep:
            await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    started = time.monotonic()
    async with serve(api) as base, async_playwright() as pw:
        for n in range(3):
            await tasks["build"].enqueue(steps=2, pause=0.01)
            await tasks["charge"].enqueue(customer=f"cust-{n}", cents=100 * (n + 1))
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=CHROMIUM_ARGS)
        try:
            admin = await browser.new_context(
                viewport={"width": 1280, "height": 800},
                http_credentials={"username": "ann", "password": "admin-pw"})
            page = await admin.new_page()
            watch(page)
            # Jobs list, then filter to the failed ones: the filter lands in the URL.
            await page.goto(f"{base}/dashboard/jobs")
            await expect(page.locator("tr.job-row .state-failed")).to_have_count(3, timeout=20_000)
            await expect(page.locator("tr.job-row .state-completed")).to_have_count(3)
            await shot(page, "jobs")
            await page.check("input[name=state][value=failed]")
            await page.click("#apply-filters")
            await expect(page).to_have_url(f"{base}/dashboard/jobs?state=failed")
            await expect(page.locator("tr.job-row")).to_have_count(3)
            # The failures, grouped: three declined cards are one group.
            await page.goto(f"{base}/dashboard/failures")
            await expect(page.locator("#failures-table tbody tr")).to_have_count(1)
            await expect(page.locator("#failures-table")).to_contain_text(
                "card declined for cust-<n>")
            await shot(page, "failures")
            # Back to the filtered list; open a failed job: its error with the traceback.
            await page.go_back()
            await page.locator("tr.job-row a.job-link").first.click()
            await expect(page.locator("#job-state")).to_have_text("failed")
            await expect(page.locator(".attempt-error summary").first).to_contain_text(
                "card declined")
            await expect(page.locator(".traceback").first).to_contain_text("Traceback")
            # Its arguments by name; it reported no progress, so no empty bar.
            await expect(page.locator("#job-arguments")).to_contain_text("customer")
            await expect(page.locator("#job-arguments")).to_contain_text("cents")
            await expect(page.locator("#progress-line")).to_be_hidden()
            await shot(page, "job")
            # Retry it (the card now works): it runs again and completes, live.
            tasks["switch"]["fail"] = False
            await page.click("#actions button:has-text('Retry')")
            await expect(page.locator("#notice")).to_have_text("1 retried")
            await expect(page.locator("#job-state")).to_have_text("completed", timeout=20_000)
            await expect(page.locator("#job-result")).to_contain_text("charged cust-")

            # Enqueue from the generated form; watch the progress move on the job page.
            await page.goto(f"{base}/dashboard/enqueue/reports.build")
            await page.fill("#arg-steps", "nope")
            await page.click("#enqueue-submit")
            await expect(page.locator(".field-error")).to_have_text("not an integer")
            await page.fill("#arg-steps", "6")
            await page.fill("#arg-pause", "0.4")
            await shot(page, "enqueue")
            await page.click("#enqueue-submit")
            await expect(page.locator("#job-id")).to_be_visible()
            seen: list[str] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                text = (await page.text_content("#progress-text") or "").strip()
                if text and (not seen or seen[-1] != text):
                    seen.append(text)
                if (await page.text_content("#job-state")) == "completed":
                    break
                await asyncio.sleep(0.05)
            await expect(page.locator("#job-state")).to_have_text("completed", timeout=10_000)
            await expect(page.locator("#job-result")).to_contain_text('"sections": 6')
            between = [s for s in seen if s not in ("0%", "100%")]
            assert len(between) >= 2, seen  # it moved, step by step, before the end
            assert [int(s.rstrip("%")) for s in seen] == sorted(
                int(s.rstrip("%")) for s in seen), seen

            # Pause a schedule.
            await page.goto(f"{base}/dashboard/schedules")
            row = page.locator("tr[data-schedule=hourly-cleanup]")
            await row.locator("button:has-text('Pause')").click()
            await expect(page.locator("#notice")).to_have_text("1 paused")
            await expect(row).to_contain_text("paused")
            assert [s.paused for s in await jobs.schedules()] == [True]
            await shot(page, "schedules")
            # Pause a queue: its new job waits; resume it: the job runs.
            await page.goto(f"{base}/dashboard/queues")
            billing = page.locator("tr[data-queue=billing]")
            await billing.locator("button:has-text('Pause')").click()
            await expect(page.locator("#notice")).to_have_text("1 paused")
            await expect(billing.locator(".queue-status")).to_contain_text("paused")
            held = await tasks["charge"].enqueue(customer="held", cents=1)
            await shot(page, "queues")
            await page.wait_for_timeout(800)  # several polls of an idle worker
            assert (await jobs.get_job(held.id)).state.value == "pending"  # type: ignore[union-attr]
            await billing.locator("button:has-text('Resume')").click()
            await expect(page.locator("#notice")).to_have_text("1 resumed")
            assert (await jobs.wait_for(held.id, timeout=10)).state.value == "completed"
            # Workers: the heartbeat, and the job a worker runs now.
            busy = await tasks["build"].enqueue(steps=5, pause=0.2)
            await page.goto(f"{base}/dashboard/workers")
            await expect(page.locator("#workers-table")).to_contain_text(
                f"reports.build {busy.id}", timeout=10_000)
            await shot(page, "workers")
            # A selection, then everything matching a filter (count shown, then confirmed):
            # two jobs due in an hour are cancelled by ticking them, then retried by filter.
            later = [await tasks["charge"].options(delay=3600).enqueue(
                customer=f"later-{n}", cents=1) for n in range(2)]
            await page.goto(f"{base}/dashboard/jobs?state=scheduled&task=billing.charge")
            await expect(page.locator("tr.job-row")).to_have_count(2)
            await page.check("#select-all")
            await page.click("#selection-cancel")
            await expect(page.locator("#notice")).to_have_text("2 cancelled")
            await page.goto(f"{base}/dashboard/jobs?state=cancelled&task=billing.charge")
            await page.click("#bulk-retry")
            await expect(page.locator("#bulk-count")).to_contain_text("2 job(s) match")
            await page.click("#bulk-confirm")
            await expect(page.locator("#notice")).to_have_text("2 retried")
            for job in later:
                assert (await jobs.wait_for(job.id, timeout=10)).state.value == "completed"
            # The overview samples while it is watched: its live refresh fills the charts.
            for n in range(8):
                await tasks["build"].enqueue(steps=2, pause=0.05 * n)
            await page.goto(f"{base}/dashboard/")
            await expect(page.locator("#samples")).not_to_have_text("1", timeout=10_000)
            if keep:  # a few more samples, for the picture
                await page.wait_for_timeout(2500)
                await shot(page, "overview")
            # Live refresh (every second here) stops while the tab is hidden, and comes back
            # at once when it is shown again.
            fetched: list[float] = []
            page.on("request", lambda r: fetched.append(time.monotonic())
                    if r.url == f"{base}/dashboard/" else None)
            await page.evaluate("""() => {
                Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
                document.dispatchEvent(new Event("visibilitychange"));
            }""")
            await expect(page.locator("#live-status")).to_have_text("paused")
            hidden_at = time.monotonic()
            await page.wait_for_timeout(1600)
            assert [t for t in fetched if t > hidden_at + 0.2] == [], "refreshed while hidden"
            await page.evaluate("""() => {
                Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
                document.dispatchEvent(new Event("visibilitychange"));
            }""")
            await expect(page.locator("#live-status")).to_have_text("live")
            assert [t for t in fetched if t > hidden_at + 1.5], "no refresh once visible"
            await expect(page.locator("#workers-alive")).to_have_text("1")

            # Read-only: the pages show, the actions do not, a forged POST is refused.
            reader_context = await browser.new_context(
                viewport={"width": 1280, "height": 800},
                http_credentials={"username": "rob", "password": "read-pw"})
            reader = await reader_context.new_page()
            watch(reader)
            await reader.goto(f"{base}/dashboard/jobs?state=completed")
            await expect(reader.locator("#role")).to_contain_text("read-only")
            await expect(reader.locator("#selection-retry")).to_have_count(0)
            await reader.locator("tr.job-row a.job-link").first.click()
            await expect(reader.locator("#job-state")).to_have_text("completed")
            await expect(reader.locator("#actions")).to_have_count(0)
            job_url = reader.url
            status = await reader.evaluate("""async (url) => {
                const token = document.querySelector('meta[name=csrf-token]').content;
                const body = new URLSearchParams({csrf: token});
                const r = await fetch(url + '/delete', {method: 'POST', body});
                return r.status;
            }""", job_url)
            assert status == 403
            await reader.goto(f"{base}/dashboard/schedules")
            await expect(reader.locator("button:has-text('Resume')")).to_have_count(0)
        finally:
            await browser.close()
    # The forged delete never happened; no console error (a CSP violation would be one).
    assert errors == []
    # Only the two refusals the scenario asked for: the invalid form, the forged delete.
    assert [r.split(" ")[0] for r in refused] == ["422", "403"], refused
    assert refused[1].endswith("/delete")
    assert icons and set(icons) <= {200, 304}, icons
    for name in ("overview", "jobs", "failures", "job", "queues", "workers", "schedules",
                 "enqueue"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 0
    print(f"\nbrowser scenario took {time.monotonic() - started:.1f}s")
