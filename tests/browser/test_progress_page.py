"""S18 in a real browser: Playwright drives Debian's chromium headless against the demo app
(uvicorn on a free loopback port, an embedded worker, jobs in a tmp SQLite file). A click on
#start fills both bars, WebSocket and SSE, to 100 %; the page is kept as a screenshot at
tests/browser/artifacts/progress.png.

Chromium comes from Debian (`.ci/run` installs it when missing), never from
`playwright install`; BACKBURNER_TEST_CHROMIUM names another binary. Under CI=true a
missing chromium fails the test; elsewhere it skips loudly."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from demo_harness import running_demo
from services import IN_CI

from examples.demo.settings import Settings, SmtpSettings

CHROMIUM = os.environ.get("BACKBURNER_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOT = ARTIFACTS / "progress.png"
STEPS = 8


def require_chromium() -> None:
    """Fail under CI, skip loudly elsewhere, when chromium or Playwright is missing."""
    reason = None
    if not Path(CHROMIUM).is_file():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs chromium)")
    with warnings.catch_warnings():
        # Into pytest's warnings summary, not turned into an error by filterwarnings=error.
        warnings.simplefilter("always")
        warnings.warn(f"SKIPPING: {reason}", stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No mail is sent by the progress page: the SMTP settings point nowhere and stay unused.
    return Settings(
        data_dir=tmp_path / "data",
        jobs_url=f"sqlite:///{tmp_path}/jobs.db",
        smtp=SmtpSettings(host="127.0.0.1", port=9, timeout=1),
        slow_seconds=0.05,
        step_seconds=0.15,
        max_upload_bytes=256 * 1024,
        retry_backoff=0.05,
        smtp_fail_rate=0.0,
    )


@pytest.mark.timeout(180)
async def test_s18_both_bars_reach_100_percent_in_chromium(settings: Settings) -> None:
    require_chromium()
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    async with running_demo(settings) as demo, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 640})
            console_errors: list[str] = []
            page.on("console", lambda m: console_errors.append(m.text)
                    if m.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            failed: list[str] = []
            # Every response, the page's icon included.
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)

            await page.goto(f"{demo.base}/progress")
            await expect(page.locator("#state-ws")).to_have_text("idle")
            # Every text the two percentages show, in order (Playwright's evaluate is not
            # subject to the page's CSP).
            await page.evaluate("""() => {
                window.seen = {ws: [], sse: []};
                for (const kind of ["ws", "sse"]) {
                    const node = document.getElementById("pct-" + kind);
                    new MutationObserver(() => window.seen[kind].push(node.textContent))
                        .observe(node, {childList: true, characterData: true, subtree: true});
                }
            }""")
            await page.fill("#steps", str(STEPS))
            await page.click("#start")

            await expect(page.locator("#job-id")).not_to_have_text("none yet")
            job_id = (await page.text_content("#job-id") or "").strip()
            for channel in ("ws", "sse"):
                await expect(page.locator(f"#state-{channel}")).to_have_text(
                    "completed", timeout=60_000)
                await expect(page.locator(f"#pct-{channel}")).to_have_text("100%")
                bar = await page.eval_on_selector(f"#bar-{channel}", "e => e.value")
                assert bar == 100, (channel, bar)
            await expect(page.locator("#error")).to_have_text("")
            seen = await page.evaluate("() => window.seen")
            for channel in ("ws", "sse"):
                # Reset to 0 by the click, then only up, ending at 100.
                percents = [int(p.rstrip("%")) for p in seen[channel]]
                rest = percents[1:] if percents[:1] == [0] else percents
                assert rest == sorted(rest) and rest[-1:] == [100], (channel, percents)

            await page.screenshot(path=str(SCREENSHOT), full_page=True)
            print(f"\nscreenshot of the progress page: {SCREENSHOT}\npercentages seen: {seen}")
        finally:
            await browser.close()
        assert failed == [], failed
        assert [e for e in console_errors if "Failed to load resource" not in e] == []

        job = await demo.wait(job_id)
        assert job["state"] == "completed" and job["result"] == {"steps": STEPS}
    assert SCREENSHOT.stat().st_size > 0
