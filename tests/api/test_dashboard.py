"""The dashboard over HTTP (httpx on the ASGI app, in the test's event loop):

- every page renders on every backend, with jobs in every state (completed, failed with a
  traceback, cancelled, pending, with progress), under the CSP;
- R21: 401 without credentials on every route, 403 for the read role on every mutation,
  403 for a missing or wrong CSRF token;
- R22: `<script>`, `"><img onerror>` in task names, arguments, errors and progress
  messages come out escaped on every page; CSV cells that start like a formula are
  neutralised; the redaction hook hides what it is told to;
- the actions (retry, cancel, delete one or a selection; schedules; the enqueue form with
  server-side validation), redirects that stay inside the dashboard, any mount prefix."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.routing import APIRoute

from backburner import Backburner, JobContext
from backburner.backends.protocol import Backend, WorkerInfo
from backburner.dashboard import basic_auth, dashboard_router, mount_dashboard
from backburner.dashboard.leases import describe, stalled
from backburner.dashboard.samples import QueueSample, Sample, Sampler
from backburner.dashboard.security import csv_cell, safe_next
from backburner.job import JobRecord, JobState

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
EVIL_MARKERS = ("<script>alert", "<img src=x", "onerror=alert(2)>")
ADMIN = {"X-Role": "admin"}
READER = {"X-Role": "read"}


def role(request: Request) -> str:
    """The host app's auth: a header naming the role (a stand-in for a session lookup)."""
    value = request.headers.get("x-role")
    if value is None:
        raise HTTPException(401, "credentials required")
    return value


def build(app: Backburner) -> dict[str, Any]:
    @app.task(name=f"evil.{EVIL}", retries=0)
    async def evil(ctx: JobContext, note: str) -> dict[str, str]:
        await ctx.progress(1, 3, f"step {EVIL}")
        raise ValueError(f"boom {note}")

    @app.task(name="shop.add", retries=0)
    async def add(a: int, b: int = 2, label: str = "sum") -> int:
        return a + b

    @app.task(name="shop.slow", retries=0)
    async def slow(ctx: JobContext, steps: int) -> str:
        await ctx.progress(1, steps, f"first of {EVIL}")
        return "never"

    @app.task(name="shop.double", retries=0)
    async def double(x: int) -> int:
        return 2 * x

    @app.task(name="shop.bill", retries=0)
    async def bill(items: list[int], express: bool = False, note: str | None = None) -> int:
        return sum(items)

    @app.periodic(every=3600, name="hourly")
    @app.task(name="shop.report")
    async def report() -> str:
        return f"report {EVIL}"

    return {"evil": evil, "add": add, "slow": slow, "report": report, "double": double}


def make_api(app: Backburner, **options: Any) -> FastAPI:
    api = FastAPI()
    mount_dashboard(api, app, auth=role, **options)
    return api


@pytest.fixture
async def seeded(app: Backburner) -> tuple[Backburner, dict[str, str]]:
    tasks = build(app)
    failed = await tasks["evil"].enqueue(note=EVIL)
    done = await tasks["add"].enqueue(1, b=3)
    await app.run_worker(burst=True, concurrency=2, handle_signals=False)
    cancelled = await tasks["add"].enqueue(5)
    await app.cancel(cancelled.id)
    waiting = await tasks["slow"].enqueue(steps=4)
    flow = await app.chain(tasks["add"].call(1, b=1), tasks["double"].pipe())
    first, second = (job.id for job in flow.jobs)
    return app, {"failed": failed.id, "completed": done.id, "cancelled": cancelled.id,
                "pending": waiting.id, "chain_first": first, "chain_second": second}


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[Backburner]:
    app = Backburner(f"sqlite:///{tmp_path}/jobs.db", poll_interval=0.2)
    await app.open()
    try:
        yield app
    finally:
        await app.close()


def client(api: FastAPI, headers: dict[str, str] | None = None,
           root_path: str = "") -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=api, root_path=root_path)
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver",
                              headers=headers or {})


class Tags(HTMLParser):
    """Every start tag with its attributes, as the browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_safe(response: httpx2.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    body = response.text
    for marker in EVIL_MARKERS:
        assert marker not in body, (response.url, marker)
    parser = Tags()
    parser.feed(body)
    for tag, attrs in parser.tags:
        # No element the evil strings could have made, no inline script, style or handler.
        assert tag not in ("img", "style"), (response.url, tag)
        assert tag != "script" or attrs.get("src"), (response.url, attrs)
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)


async def csrf_of(http: httpx2.AsyncClient, path: str = "/dashboard/") -> str:
    page = await http.get(path)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


async def test_every_page_renders_escaped_on_every_backend(
    seeded: tuple[Backburner, dict[str, str]], backend: Backend,
) -> None:
    app, ids = seeded
    async with client(make_api(app), ADMIN) as http:
        pages = ["/dashboard/", "/dashboard/jobs", "/dashboard/jobs?state=failed",
                 "/dashboard/jobs?state=pending&state=cancelled&queue=default",
                 f"/dashboard/jobs?task=evil.{EVIL}", "/dashboard/queues",
                 "/dashboard/workers", "/dashboard/schedules", "/dashboard/enqueue",
                 "/dashboard/enqueue/shop.add", "/dashboard/jobs?limit=1",
                 "/dashboard/failures", "/dashboard/jobs-bulk?action=retry&state=failed",
                 f"/dashboard/jobs?q={EVIL}", "/dashboard/jobs?q=boom&after=2020-01-01T00:00",
                 "/dashboard/jobs-bulk?action=delete",
                 *(f"/dashboard/jobs/{i}" for i in ids.values())]
        for path in pages:
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert_safe(response)
        overview = (await http.get("/dashboard/")).text
        assert "Latest failures" in overview and "ValueError" in overview
        assert "&lt;script&gt;" in overview  # the evil task's name, shown escaped
        assert "Queue <b>default</b>" in overview  # a backlog and no live worker: warned
        # Every state has its column, cancelled too; the history is told in plain words.
        head = re.search(r'id="overview-queues">\s*<thead><tr>(.*?)</tr>', overview)
        assert head is not None
        assert re.findall(r"<th>(\w+)</th>", head.group(1)) == [
            "queue", "pending", "scheduled", "running", "completed", "failed", "cancelled",
            "workers"]
        row = re.search(r'<tr data-queue="default">(.*?)</tr>', overview, re.S)
        assert row is not None
        # default: the cancelled one; pending: slow + the chain's first step; the failed
        # evil job and the completed add ran there too.
        assert re.findall(r"<td>(\d+)</td>", row.group(1)) == ["2", "1", "0", "1", "1", "1", "0"]
        assert "samples kept" not in overview and "reading(s) of the job counts" in overview
        listing = (await http.get("/dashboard/jobs?state=failed")).text
        assert ids["failed"] in listing and ids["completed"] not in listing
        detail = (await http.get(f"/dashboard/jobs/{ids['failed']}")).text
        assert "Traceback" in detail and "boom" in detail and "attempt 1 error" in detail
        assert "step &lt;script&gt;" in detail  # the progress message
        done = (await http.get(f"/dashboard/jobs/{ids['completed']}")).text
        assert 'id="job-result">4<' in done and "completed" in done
        # Arguments under their parameters' names; no progress, no bar.
        arguments = re.search(r'id="job-arguments">(.*?)</table>', done, re.S)
        assert arguments is not None
        assert re.findall(r"<th>(\w+)</th><td><pre>(\d+)</pre>", arguments.group(1)) == [
            ("a", "1"), ("b", "3")]
        assert '<p id="progress-line" hidden>' in done
        assert 'data-refresh="0"' in done  # an ended job's page has nothing left to refresh
        # A failed job shows where its attempt got to before it failed.
        assert "Last progress before it failed:" in detail
        assert re.search(r'<progress id="progress" max="100" value="33\.3\d*">', detail)
        assert "(1 of 3)" in detail and '<p id="progress-line">' in detail
        assert 'id="progress-label">Last progress before it failed:' in detail
        waiting = (await http.get(f"/dashboard/jobs/{ids['pending']}")).text
        assert '<p id="progress-line" hidden>' in waiting and "No arguments" not in waiting
        paged = (await http.get("/dashboard/jobs?limit=1")).text
        next_url = re.search(r'href="([^"]+)" id="next-page"', paged)
        assert next_url is not None
        second = await http.get(next_url.group(1).replace("&amp;", "&"))
        assert second.status_code == 200 and 'id="first-page"' in second.text
        found = (await http.get("/dashboard/jobs", params={"q": "BOOM"})).text
        assert ids["failed"] in found and ids["completed"] not in found
        future = (await http.get("/dashboard/jobs", params={"after": "2999-01-01T00:00"})).text
        assert 'id="no-jobs"' in future
        bad = await http.get("/dashboard/jobs", params={"before": "yesterday"})
        assert bad.status_code == 400 and "not a date" in bad.text
        groups = (await http.get("/dashboard/failures")).text
        assert "ValueError" in groups and "boom" in groups and "Retry all 1" in groups
        confirm = (await http.get("/dashboard/jobs-bulk?action=retry")).text
        assert re.search(r'id="bulk-count"><b>2</b>', confirm), confirm  # failed + cancelled
        step = (await http.get(f"/dashboard/jobs/{ids['chain_second']}")).text
        assert 'id="links"' in step and "waits for" in step and ids["chain_first"] in step
        assert "waiting for 1 job(s)" in step and "9999" not in step
        head = (await http.get(f"/dashboard/jobs/{ids['chain_first']}")).text
        assert "waited for by" in head and ids["chain_second"] in head
        schedules = (await http.get("/dashboard/schedules")).text
        assert "hourly" in schedules and "every 1 hour" in schedules.lower()


async def test_r21_auth_read_only_and_csrf_on_every_route(sqlite_app: Backburner) -> None:
    app = sqlite_app
    tasks = build(app)
    job = await tasks["add"].enqueue(1)
    api = FastAPI()
    router = mount_dashboard(api, app, auth=role)
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    params = {"job_id": job.id, "action": "retry", "schedule": "hourly", "task": "shop.add",
              "file": "favicon.svg", "group": "0123456789abcdef",
              "queue": "default"}
    calls = [(method, re.sub(r"\{(\w+)(:\w+)?\}", lambda m: params[m.group(1)], r.path))
             for r in routes for method in r.methods]
    calls = [(m, p.replace("hourly/retry", "hourly/pause")) for m, p in calls]
    posts = [(m, p) for m, p in calls if m == "POST"]
    assert len(posts) >= 4, calls
    async with client(api) as anonymous:
        for method, path in calls:
            response = await anonymous.request(method, path)
            assert response.status_code == 401, (method, path, response.status_code)
    async with client(api, READER) as reader:
        token = await csrf_of(reader)
        for method, path in posts:
            response = await reader.request(method, path, data={"csrf": token})
            assert response.status_code == 403, (path, response.text)
        page = (await reader.get(f"/dashboard/jobs/{job.id}")).text
        assert "read-only" in page and 'id="actions"' not in page
    async with client(api, ADMIN) as admin:
        token = await csrf_of(admin)
        for method, path in posts:
            missing = await admin.request(method, path, data={})
            assert missing.status_code == 403 and "CSRF" in missing.text, path
            wrong = await admin.request(method, path, data={"csrf": token[:-2] + "xx"})
            assert wrong.status_code == 403, path
            # A good token from a page of another origin: refused all the same.
            for origin in ("https://evil.example", "http://testserver.evil.example", "null"):
                foreign = await admin.request(method, path, data={"csrf": token},
                                              headers={"Origin": origin})
                assert foreign.status_code == 403, (path, origin, foreign.text)
                assert "cross-origin" in foreign.text
        # The cookie alone is not enough, and a token without its cookie neither.
        fresh = client(api, ADMIN)
        async with fresh:
            no_cookie = await fresh.post(f"/dashboard/jobs/{job.id}/cancel",
                                         data={"csrf": token})
            assert no_cookie.status_code == 403
        assert (await app.get_job(job.id)).state.value == "pending"  # type: ignore[union-attr]
        ok = await admin.post(f"/dashboard/jobs/{job.id}/cancel", data={"csrf": token},
                              headers={"Origin": "http://testserver"})
        assert ok.status_code == 303
        header = await admin.post(f"/dashboard/jobs/{job.id}/retry",
                                  headers={"X-CSRF-Token": token})
        assert header.status_code == 303
    assert (await app.get_job(job.id)).state.value == "pending"  # type: ignore[union-attr]


async def test_a_running_job_whose_worker_stopped_says_when_it_will_be_retried(
    app: Backburner,
) -> None:
    """Jobs claimed by a live worker, by a worker that is gone (its lease still runs) and
    by one whose lease passed: the job page and the list tell the last two apart, with the
    lease's end and the attempt that follows, from the store's own lease and heartbeats."""
    tasks = build(app)
    healthy, gone, expired = [await tasks["add"].enqueue(n) for n in range(3)]
    backend = app.backend
    await backend.register_worker(WorkerInfo("w-live", "host", 1, ("default",), 1))
    claims = [(await backend.claim(worker, ["default"], 1, lease)).jobs
              for worker, lease in (("w-live", 600.0), ("w-gone", 600.0), ("w-late", 0.05))]
    assert [[j.id for j in c] for c in claims] == [[healthy.id], [gone.id], [expired.id]]
    for job_id in (gone.id, expired.id):
        await backend.update_progress(job_id, 1, '{"current": 15, "total": 100}')
    for _ in range(200):  # until the store's clock passed the short lease (no timing assert)
        record = await app.get_job(expired.id)
        assert record is not None and record.lease_until is not None
        if await backend.now() > record.lease_until.timestamp():
            break
        await asyncio.sleep(0.05)
    async with client(make_api(app), ADMIN) as http:
        fine = (await http.get(f"/dashboard/jobs/{healthy.id}")).text
        assert 'id="stalled"' not in fine and 'id="job-lease"' in fine
        lost = (await http.get(f"/dashboard/jobs/{gone.id}")).text
        notice = re.search(r'id="stalled">([^<]*)<', lost)
        assert notice is not None, lost
        text = notice.group(1)
        assert text.startswith("Worker w-gone stopped responding (it is no longer registered)")
        assert "its lease expires at " in text and " UTC, then the job will be retried " \
            "(attempt 2; a lost worker does not use up one of its 1 attempt(s))." in text
        assert "15%" in lost and 'data-refresh="5.0"' in lost  # the notice region refreshes
        late = (await http.get(f"/dashboard/jobs/{expired.id}")).text
        notice = re.search(r'id="stalled">([^<]*)<', late)
        assert notice is not None and "its lease expired at " in notice.group(1)
        assert "as soon as a live worker takes it back" in notice.group(1)
        listing = (await http.get("/dashboard/jobs?state=running")).text
        marked = re.findall(r'data-job="([^"]+)">(?:(?!</tr>).)*?worker stopped responding',
                            listing, re.S)
        assert sorted(marked) == sorted([gone.id, expired.id])
        # Taken back: waiting again, no notice, and the progress shown is the lost attempt's.
        assert [t.id for t in await backend.rescue_expired(3)] == [expired.id]
        again = (await http.get(f"/dashboard/jobs/{expired.id}")).text
        assert 'id="stalled"' not in again and "Progress of its previous attempt:" in again


def test_stall_judged_from_lease_and_heartbeat() -> None:
    """The rule itself, on records as the store answers them (epoch seconds, store clock)."""
    from datetime import UTC, datetime

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    base = JobRecord(
        id="j1", task="t", queue="default", priority=0, state=JobState.RUNNING, args=[],
        kwargs={}, attempt=2, max_attempts=3, failures=1, lost=0, timeout=None, errors=(),
        result=None, reason=None, progress=None, worker_id="w1", cancel_requested=False,
        created_at=at(900), updated_at=at(1000), run_at=at(900), started_at=at(1000),
        finished_at=None, lease_until=at(1030))
    worker = WorkerInfo("w1", "h", 1, ("default",), 1, started_at=900, heartbeat_at=1000)
    other = WorkerInfo("w2", "h", 2, ("default",), 1, started_at=900, heartbeat_at=1040)
    # Beating: 10 s of a 30 s lease since the last heartbeat.
    assert stalled(base, [worker], 1010, stale_after=60) is None
    # 16 s: more than half the lease without a heartbeat.
    stall = stalled(base, [worker], 1016, stale_after=60)
    assert stall is not None and not stall.expired and stall.silent_for == 16
    assert stall.next_attempt == 3 and not stall.rescuer
    text = describe(stall, lambda t: f"T{t:.0f}", lambda s: f"{s:.0f}s ago")
    assert text == ("Worker w1 stopped responding (last heartbeat 16s ago); its lease expires "
                    "at T1030, then the job will be retried (attempt 3; a lost worker does not "
                    "use up one of its 3 attempt(s)), once a live worker takes it back (none "
                    "is running now).")
    # Past the lease, with another worker alive; a cancel asked; workers lost before.
    stall = stalled(replace(base, cancel_requested=True), [worker, other], 1045, 60)
    assert stall is not None and stall.expired and stall.rescuer
    assert describe(stall, str, str).endswith(
        "so the job will be cancelled, as was asked, as soon as a live worker takes it back "
        "(within seconds).")
    stall = stalled(replace(base, lost=1), [other], 1020, 60)
    assert stall is not None and stall.silent_for is None
    assert "It lost 1 worker(s) before" in describe(stall, str, str)
    # Not running, or no lease: nothing to say.
    assert stalled(replace(base, state=JobState.PENDING), [], 2000, 60) is None
    assert stalled(replace(base, lease_until=None), [], 2000, 60) is None


async def test_basic_auth_roles(sqlite_app: Backburner) -> None:
    api = FastAPI()
    mount_dashboard(api, sqlite_app, auth=basic_auth(
        {"ann": ("s3cret", "admin"), "rob": ("pw", "read")}))
    async with client(api) as http:
        challenge = await http.get("/dashboard/")
        assert challenge.status_code == 401
        assert challenge.headers["www-authenticate"].startswith("Basic")
        assert (await http.get("/dashboard/", auth=("ann", "wrong"))).status_code == 401
        assert (await http.get("/dashboard/", auth=("eve", "pw"))).status_code == 401
        assert (await http.get("/dashboard/", auth=("rob", "pw"))).status_code == 200
        page = await http.get("/dashboard/", auth=("ann", "s3cret"))
        assert page.status_code == 200 and 'id="role">admin' in page.text
    with pytest.raises(ValueError, match="role"):
        basic_auth({"x": ("y", "root")})  # type: ignore[dict-item]


async def test_actions_one_selection_schedules(sqlite_app: Backburner) -> None:
    app = sqlite_app
    tasks = build(app)
    failed = await tasks["evil"].enqueue(note="x")
    await app.run_worker(burst=True, handle_signals=False)
    a, b = await tasks["add"].enqueue(1), await tasks["add"].enqueue(2)
    async with client(make_api(app), ADMIN) as http:
        token = await csrf_of(http)
        retried = await http.post(f"/dashboard/jobs/{failed.id}/retry",
                                  data={"csrf": token, "next": "/dashboard/jobs?state=failed"})
        assert retried.status_code == 303
        assert retried.headers["location"].startswith("/dashboard/jobs?state=failed&notice=")
        assert (await app.get_job(failed.id)).state.value == "pending"  # type: ignore[union-attr]
        shown = await http.get(retried.headers["location"])
        assert "1 retried" in shown.text
        # The page's forms go back to it without the old notice.
        assert 'name="next" value="/dashboard/jobs?state=failed"' in shown.text
        # A second retry of a pending job changes nothing, and says so.
        again = await http.post(f"/dashboard/jobs/{failed.id}/retry", data={"csrf": token})
        assert "skipped=1" in again.headers["location"]
        # Selection: cancel two, then delete them.
        sel = await http.post("/dashboard/selection", data={
            "csrf": token, "action": "cancel", "ids": [a.id, b.id], "next": "/dashboard/jobs"})
        assert sel.status_code == 303 and "done=2" in sel.headers["location"]
        sel = await http.post("/dashboard/selection", data={
            "csrf": token, "action": "delete", "ids": [a.id, b.id, "nope"]})
        assert "done=2" in sel.headers["location"] and "skipped=1" in sel.headers["location"]
        assert await app.get_job(a.id) is None
        bad = await http.post("/dashboard/selection", data={"csrf": token, "action": "nuke"})
        assert bad.status_code == 400
        # Redirects never leave the dashboard.
        away = await http.post(f"/dashboard/jobs/{failed.id}/cancel",
                               data={"csrf": token, "next": "https://evil.example/x"})
        assert away.headers["location"].startswith(f"/dashboard/jobs/{failed.id}?")
        # Queues: pause (the overview says so instead of warning of no worker), resume.
        paused = await http.post("/dashboard/queues/default/pause",
                                 data={"csrf": token, "next": "/dashboard/queues"})
        assert paused.status_code == 303 and "notice=pause" in paused.headers["location"]
        assert (await app.queue("default")).paused
        queues = (await http.get("/dashboard/queues")).text
        assert "Resume" in queues and "state-paused" in queues
        overview = (await http.get("/dashboard/")).text
        assert "state-paused" in overview and "no live worker" not in overview
        await http.post("/dashboard/queues/default/resume", data={"csrf": token})
        assert not (await app.queue("default")).paused
        assert "no live worker" in (await http.get("/dashboard/")).text
        assert (await http.post("/dashboard/queues/default/drain",
                                data={"csrf": token})).status_code == 404
        # Schedules: pause, resume, trigger now.
        paused = await http.post("/dashboard/schedules/hourly/pause", data={"csrf": token})
        assert paused.status_code == 303
        assert [s.paused for s in await app.schedules()] == [True]
        page = (await http.get("/dashboard/schedules")).text
        assert "paused" in page and "Resume" in page
        await http.post("/dashboard/schedules/hourly/resume", data={"csrf": token})
        assert [s.paused for s in await app.schedules()] == [False]
        triggered = await http.post("/dashboard/schedules/hourly/trigger", data={"csrf": token})
        job_path = triggered.headers["location"].split("?")[0]
        job_id = job_path.rsplit("/", 1)[1]
        assert (await app.get_job(job_id)).task == "shop.report"  # type: ignore[union-attr]
        assert (await http.post("/dashboard/schedules/nope/pause",
                                data={"csrf": token})).status_code == 404


async def test_bulk_by_filter_and_failure_groups(sqlite_app: Backburner) -> None:
    app = sqlite_app
    tasks = build(app)
    for n in range(4):
        await tasks["evil"].enqueue(note=f"order {n}")
    keep = await tasks["add"].enqueue(1)
    await app.run_worker(burst=True, concurrency=4, handle_signals=False)
    late = await tasks["add"].enqueue(2)
    async with client(make_api(app), ADMIN) as http:
        token = await csrf_of(http)
        groups = (await http.get("/dashboard/failures")).text
        (fingerprint,) = re.findall(r'data-group="([0-9a-f]+)"', groups)
        assert "Retry all 4" in groups and "boom order &lt;n&gt;" in groups
        done = await http.post(f"/dashboard/failures/{fingerprint}/retry",
                               data={"csrf": token, "next": "/dashboard/failures"})
        assert done.status_code == 303 and "done=4" in done.headers["location"]
        assert await app.count_jobs(states=["pending"]) == 5
        # Cancel everything pending whose arguments mention "order", after confirming.
        page = await http.get("/dashboard/jobs-bulk", params={"action": "cancel", "q": "order"})
        assert re.search(r'id="bulk-count"><b>4</b>', page.text)
        assert 'name="count" value="4"' in page.text and 'name="q" value="order"' in page.text
        applied = await http.post("/dashboard/jobs-bulk", data={
            "csrf": token, "action": "cancel", "q": "order", "count": "4",
            "next": "/dashboard/jobs?q=order"})
        assert applied.status_code == 303
        assert applied.headers["location"].startswith("/dashboard/jobs?q=order&notice=cancel")
        assert "done=4" in applied.headers["location"]
        assert await app.count_jobs(states=["cancelled"]) == 4
        assert (await app.get_job(late.id)).state.value == "pending"  # type: ignore[union-attr]
        # The confirmed count bounds the action: delete at most 2 of the 4 cancelled.
        await http.post("/dashboard/jobs-bulk", data={
            "csrf": token, "action": "delete", "state": "cancelled", "count": "2"})
        assert await app.count_jobs(states=["cancelled"]) == 2
        refused = await http.post("/dashboard/jobs-bulk", data={
            "csrf": token, "action": "explode", "count": "2"})
        assert refused.status_code == 400
        assert (await app.get_job(keep.id)) is not None


async def test_enqueue_form_validated_on_the_server(sqlite_app: Backburner) -> None:
    app = sqlite_app
    build(app)
    async with client(make_api(app), ADMIN) as http:
        form = (await http.get("/dashboard/enqueue/shop.add")).text
        assert 'name="a"' in form and 'name="b"' in form and 'value="2"' in form
        token = await csrf_of(http)
        wrong = await http.post("/dashboard/enqueue/shop.add",
                                data={"csrf": token, "a": "one", "b": "2"})
        assert wrong.status_code == 422 and "not an integer" in wrong.text
        assert 'value="one"' in wrong.text  # the form keeps what was typed
        missing = await http.post("/dashboard/enqueue/shop.add", data={"csrf": token, "b": ""})
        assert missing.status_code == 422 and "required" in missing.text
        evil = await http.post("/dashboard/enqueue/shop.add",
                               data={"csrf": token, "a": EVIL})
        assert evil.status_code == 422
        assert_safe(evil)
        ok = await http.post("/dashboard/enqueue/shop.add",
                             data={"csrf": token, "a": "40", "label": "x"})
        assert ok.status_code == 303
        job_id = ok.headers["location"].split("?")[0].rsplit("/", 1)[1]
        record = await app.get_job(job_id)
        assert record is not None and record.kwargs == {"a": 40, "label": "x"}
        assert (await http.get("/dashboard/enqueue/nope")).status_code == 404
        # A JSON field, validated by the task's own signature (pydantic) on the server.
        form = (await http.get("/dashboard/enqueue/shop.bill")).text
        assert '<textarea id="arg-items"' in form and 'type="checkbox" id="arg-express"' in form
        shape = await http.post("/dashboard/enqueue/shop.bill",
                                data={"csrf": token, "items": '["a"]'})
        assert shape.status_code == 422 and 'id="enqueue-error"' in shape.text
        assert "items" in shape.text
        not_json = await http.post("/dashboard/enqueue/shop.bill",
                                   data={"csrf": token, "items": "[1,"})
        assert not_json.status_code == 422 and "not valid JSON" in not_json.text
        billed = await http.post("/dashboard/enqueue/shop.bill",
                                 data={"csrf": token, "items": "[1, 2]", "express": "on"})
        assert billed.status_code == 303
        bill_id = billed.headers["location"].split("?")[0].rsplit("/", 1)[1]
        bill_job = await app.get_job(bill_id)
        assert bill_job is not None and bill_job.kwargs == {"items": [1, 2], "express": True}


async def test_csv_export_neutralises_formulas_and_redaction_applies(
    sqlite_app: Backburner,
) -> None:
    app = sqlite_app
    tasks = build(app)
    await tasks["add"].enqueue(1, label="=HYPERLINK(\"http://x\")")
    await tasks["add"].enqueue(2, label="+1", b=3)
    await tasks["add"].enqueue(3, label="@SUM(A1)")
    await tasks["add"].enqueue(4, label="secret-password")

    def redact(record: JobRecord) -> JobRecord:
        kwargs = {k: ("***" if v == "secret-password" else v) for k, v in record.kwargs.items()}
        return replace(record, kwargs=kwargs)

    async with client(make_api(app, redact=redact), ADMIN) as http:
        response = await http.get("/dashboard/jobs.csv?task=shop.add")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0][:4] == ["id", "task", "queue", "state"] and len(rows) == 5
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert "secret-password" not in response.text and "***" in response.text
        page = (await http.get("/dashboard/jobs")).text
        listing = await app.list_jobs(task="shop.add")
        secret = [j for j in listing.jobs if j.kwargs.get("label") == "secret-password"][0]
        detail = (await http.get(f"/dashboard/jobs/{secret.id}")).text
        assert "secret-password" not in detail and "***" in detail and secret.id in page
    assert csv_cell("-2") == "'-2" and csv_cell("\tx") == "'\tx" and csv_cell("ok") == "ok"


async def test_served_under_any_prefix_and_root_path(sqlite_app: Backburner) -> None:
    app = sqlite_app
    tasks = build(app)
    job = await tasks["add"].enqueue(1)
    api = FastAPI()
    api.include_router(dashboard_router(app, auth=role, prefix="/ops/jobs-ui"))
    async with client(api, ADMIN, root_path="/proxy") as http:
        page = await http.get("/proxy/ops/jobs-ui/jobs")
        assert page.status_code == 200
        assert 'href="/proxy/ops/jobs-ui/static/dashboard.css"' in page.text
        assert f'href="/proxy/ops/jobs-ui/jobs/{job.id}"' in page.text
        css = await http.get("/proxy/ops/jobs-ui/static/dashboard.css")
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        js = await http.get("/proxy/ops/jobs-ui/static/dashboard.js")
        assert "visibilitychange" in js.text
        assert (await http.get("/proxy/ops/jobs-ui/static/..%2Fsecurity.py")).status_code \
            == 404
        # The layout links an icon, served like the other static files; the ICO a browser
        # may ask for under the dashboard leads there.
        assert 'rel="icon" type="image/svg+xml" href="/proxy/ops/jobs-ui/static/favicon.svg"' \
            in page.text
        icon = await http.get("/proxy/ops/jobs-ui/static/favicon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.text.startswith("<svg")
        ico = await http.get("/proxy/ops/jobs-ui/favicon.ico")
        assert ico.status_code == 308
        assert ico.headers["location"] == "/proxy/ops/jobs-ui/static/favicon.svg"
        bare = await http.get("/proxy/ops/jobs-ui")
        assert bare.status_code == 307
        assert bare.headers["location"] == "/proxy/ops/jobs-ui/"
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Path=/proxy/ops/jobs-ui/" in cookie


async def test_job_events_stream_state_and_progress(sqlite_app: Backburner) -> None:
    app = sqlite_app
    tasks = build(app)
    job = await tasks["add"].enqueue(1)
    await app.run_worker(burst=True, handle_signals=False)
    async with client(make_api(app), ADMIN) as http:
        response = await http.get(f"/dashboard/jobs/{job.id}/events")
        assert response.status_code == 200
        assert "event: job" in response.text and '"state":"completed"' in response.text
        assert '"result"' not in response.text  # only state and progress go out here
        gone = await http.get("/dashboard/jobs/nope/events")
        assert "event: gone" in gone.text
        missing = await http.get("/dashboard/jobs/nope")
        assert missing.status_code == 404 and "no job with id" in missing.text


async def test_job_events_progress_message_goes_through_redact(
    sqlite_app: Backburner,
) -> None:
    """The SSE stream shows a progress message from the redacted record, as the page does."""
    app = sqlite_app
    tasks = build(app)
    job = await tasks["slow"].enqueue(steps=4)  # its progress message carries EVIL
    await app.run_worker(burst=True, handle_signals=False)
    record = await app.get_job(job.id)
    assert record is not None and record.progress is not None
    assert "first of" in (record.progress.message or "")

    def redact(record: JobRecord) -> JobRecord:
        if record.progress is None:
            return record
        return replace(record, progress=replace(record.progress, message="[redacted]"))

    async with client(make_api(app, redact=redact), ADMIN) as http:
        response = await http.get(f"/dashboard/jobs/{job.id}/events")
        assert '"message":"[redacted]"' in response.text
        assert "first of" not in response.text
        page = (await http.get(f"/dashboard/jobs/{job.id}")).text
        assert "[redacted]" in page and "first of" not in page


async def test_overview_history_from_the_jobs_own_times(app: Backburner) -> None:
    """The first sample rebuilds the minutes before it from the finished jobs' timestamps
    (one bounded listing): the charts show the recent past with no page open before."""
    tasks = build(app)
    for i in range(3):
        await tasks["add"].enqueue(i)
    await tasks["evil"].enqueue(note="x")
    await app.run_worker(burst=True, concurrency=2, handle_signals=False)
    sampler = Sampler(app, interval=5)
    first = await sampler.latest()
    buckets = [b for q in sampler.backfill.values() for b in q]
    assert sum(b.completed for b in buckets) == 3 and sum(b.failed for b in buckets) == 1
    assert all(first.at - 30 * 60 <= b.at <= first.at for b in buckets)
    queue = next(iter(sampler.backfill))
    charts = {c.title: c for c in sampler.charts(queue)}
    assert charts["throughput /min"].points and charts["run s"].points
    assert charts["throughput /min"].peak == "4.0" and charts["failure %"].peak == "25%"
    # After a long gap with nobody watching, the old samples go and the history is rebuilt.
    sampler.samples.clear()
    sampler.samples.append(Sample(first.at - 3600, {}, []))
    sampler.backfill = {}
    sampler._taken = None
    await sampler.latest()
    assert len(sampler.samples) == 1 and sampler.samples[0].at > first.at - 3600
    assert sum(b.completed for q in sampler.backfill.values() for b in q) == 3


async def test_a_costly_sample_is_not_taken_again_soon(sqlite_app: Backburner) -> None:
    """A sample that took c seconds waits 20·c before the next (pages show the kept one)."""
    now = [100.0]
    sampler = Sampler(sqlite_app, interval=5, clock=lambda: now[0])
    await sampler.latest()
    sampler._cost = 10.0  # as if counting the store took 10 s
    now[0] += 6  # past the interval, not past 20 x 10 s
    await sampler.latest()
    assert len(sampler.samples) == 1
    now[0] += 200
    await sampler.latest()
    assert len(sampler.samples) == 2 and sampler._cost == 0.0  # the fake clock stood still


def test_public_surface() -> None:
    import backburner.dashboard

    assert sorted(backburner.dashboard.__all__) == [
        "Role", "basic_auth", "dashboard_router", "mount_dashboard"]


def test_redirect_targets_stay_inside_the_dashboard() -> None:
    root = "/dashboard/"
    assert safe_next("/dashboard/jobs?state=failed", root) == "/dashboard/jobs?state=failed"
    assert safe_next("/dashboard", root) == "/dashboard"
    for bad in ("https://evil.example/dashboard/", "//evil.example/dashboard/",
                "/\\evil.example", "/dashboardx/jobs", "/other", "", None,
                "javascript:alert(1)"):
        assert safe_next(bad, root) is None, bad


def test_sampler_charts_rates_and_backlog() -> None:
    sampler = Sampler(Backburner("memory://"), interval=1)
    for at, pending, completed, failed in ((0, 1, 0, 0), (60, 3, 10, 0), (120, 6, 14, 4)):
        sampler.samples.append(Sample(at, {"default": QueueSample(
            pending=pending, completed=completed, failed=failed, wait=0.5, run=1.0)}, []))
    charts = {c.title: c for c in sampler.charts("default")}
    assert charts["throughput /min"].last == "8.0" and charts["throughput /min"].peak == "10.0"
    assert charts["failure %"].last == "50%"
    assert charts["depth"].last == "6" and len(charts["depth"].points.split()) == 3
    assert sampler.backlog_growing("default") and not sampler.backlog_growing("other")
    assert sampler.charts("other")[4].points == ""
