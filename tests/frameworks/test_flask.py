"""backburner.flask in a real Flask app (tests/frameworks/flask_site.py) under a real gunicorn
(two workers forked from a `--preload`ed parent that already used the Backburner app, behind
SCRIPT_NAME=/site) with a real `flask backburner worker` process, on SQLite, Redis and
PostgreSQL: views enqueue with the sync API (202 + Location into the mounted router) and
wait for results the worker computed inside the Flask app context; on PostgreSQL a row and
a job commit or roll back together through a SQLAlchemy session; the mounted dashboard and
job router answer according to the Flask session's login; SIGTERM stops both cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from child_process import Proc, processes
from flask import Flask, current_app
from services import TEST_URLS, backend_url, destroy_store, free_port

from backburner import Backburner
from backburner import flask as bb

from .harness import STORES

HERE = Path(__file__).resolve().parent
PREFIX = "/site"
"""The WSGI SCRIPT_NAME gunicorn serves the app under: every link must carry it."""


@pytest.mark.parametrize("kind", STORES)
async def test_flask_site_under_gunicorn(kind: str, tmp_path: Path) -> None:
    url = backend_url(kind, tmp_path)
    try:
        await _exercise(kind, url, tmp_path)
    finally:
        if TEST_URLS[kind].server:
            await asyncio.to_thread(destroy_store, url)


async def _exercise(kind: str, url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BB_TEST_URL": url, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    with processes() as started:
        server = Proc([sys.executable, "-m", "gunicorn", "--workers", "2", "--preload",
                       "--bind", f"127.0.0.1:{port}", "--chdir", str(HERE),
                       "--graceful-timeout", "10",
                       # Its default control socket is one path for every gunicorn of
                       # the machine: tests running side by side would share it.
                       "--no-control-socket", "flask_site:app"],
                      {**env, "SCRIPT_NAME": PREFIX}, tmp_path / "gunicorn.log")
        started.append(server)
        worker = Proc([sys.executable, "-m", "flask", "--app", "flask_site", "backburner",
                       "worker", "--concurrency", "4", "--queues", "default"],
                      env, tmp_path / "worker.log")
        started.append(worker)
        await server.wait_for(r"(?s)Booting worker.*Booting worker")
        await worker.wait_for(r"worker \S+ started")
        base = f"http://127.0.0.1:{port}{PREFIX}"
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            await _views(client, base, server.popen.pid)
            if kind == "postgres":
                await _transactional(client, url)
            await _mounted(client, base)

        assert worker.stop(signal.SIGTERM) == 0, worker.text()
        assert re.search(r"worker \S+ stopped after [1-9]\d* job\(s\)", worker.text())
        assert server.stop(signal.SIGTERM) == 0, server.text()
        assert "Shutting down: Master" in server.text(), server.text()
        for proc in (server, worker):
            assert "Traceback" not in proc.text(), proc.text()
            assert " ERROR " not in proc.text(), proc.text()


async def _views(client: httpx.AsyncClient, base: str, master: int) -> None:
    answer = await client.post("/greet", params={"name": "ada"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    # The job's status in the mounted router, under SCRIPT_NAME and the blueprint prefix.
    assert answer.headers["location"] == f"{base}/bb/jobs/{body['id']}"
    assert body["status_url"] == answer.headers["location"]
    # The worker ran the sync task in an app context: `current_app` is the Flask app.
    done = await client.get(f"/result/{body['id']}")
    assert done.status_code == 200, done.text
    assert done.json() == {"result": "flask_site greets ada"}

    # A view that waits for the worker; the async task read the app's config.
    waited = await client.get("/shout", params={"name": "grace"})
    assert waited.status_code == 200, waited.text
    assert waited.json()["result"]["text"] == "HELLO GRACE"
    # Served by a forked gunicorn worker, run by the worker process.
    assert waited.json()["served_by"] != master
    assert waited.json()["result"]["pid"] != waited.json()["served_by"]


async def _transactional(client: httpx.AsyncClient, url: str) -> None:
    import psycopg

    kept = await client.post("/orders", params={"item": "kept"})
    assert kept.status_code == 200, kept.text
    dropped = await client.post("/orders", params={"item": "dropped", "fail": "1"})
    assert dropped.status_code == 409, dropped.text
    schema = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["schema"]
    plain = urlsplit(url)._replace(query="").geturl()
    async with await psycopg.AsyncConnection.connect(plain) as conn:
        rows = await conn.execute(f"SELECT item FROM {schema}.orders ORDER BY item")
        assert [r[0] for r in await rows.fetchall()] == ["kept"]
        found = await conn.execute(
            f"SELECT id FROM {schema}.jobs WHERE id = ANY(%s)",
            [[kept.json()["id"], dropped.json()["id"]]])
        assert [r[0] for r in await found.fetchall()] == [kept.json()["id"]]
    # The committed job runs.
    ran = await client.get(f"/result/{kept.json()['id']}")
    assert ran.json() == {"result": "flask_site greets kept"}


async def _mounted(client: httpx.AsyncClient, base: str) -> None:
    done = await client.get("/shout", params={"name": "x"})
    job_id = done.json()["id"]
    # Without a login: the Flask session carries no user.
    assert (await client.get("/dashboard/")).status_code == 401
    assert (await client.get(f"/bb/jobs/{job_id}")).status_code == 401

    login = await client.post("/login", data={"user": "viewer"})
    assert login.status_code == 200, login.text
    page = await client.get("/dashboard/")
    assert page.status_code == 200, page.text
    assert f'href="{PREFIX}/dashboard/jobs"' in page.text, page.text
    detail = await client.get(f"/dashboard/jobs/{job_id}")
    assert detail.status_code == 200, detail.text
    assert job_id in detail.text
    # Flask's own redirect to the mount's root keeps the prefix too.
    bare = await client.get("/dashboard")
    assert bare.status_code in (301, 308)
    assert bare.headers["location"] in (f"{base}/dashboard/", f"{PREFIX}/dashboard/")

    status = await client.get(f"/bb/jobs/{job_id}")
    assert status.status_code == 200, status.text
    assert status.json()["state"] == "completed"
    assert status.json()["result"]["text"] == "HELLO X"
    # A reader watches but cannot change anything.
    refused = await client.post(f"/bb/jobs/{job_id}/retry")
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")

    await client.post("/login", data={"user": "admin"})
    made = await client.post("/bb/tasks/greet", json={"name": "api"})
    assert made.status_code == 202, made.text
    assert made.headers["location"] == f"{base}/bb/jobs/{made.json()['id']}"
    ran = await client.get(f"/result/{made.json()['id']}")
    assert ran.json() == {"result": "flask_site greets api"}
    removed = await client.delete(f"/bb/jobs/{made.json()['id']}")
    assert removed.status_code == 204, removed.text
    missing = await client.get(f"/bb/jobs/{made.json()['id']}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_worker_command_runs_each_job_in_an_app_context(tmp_path: Path) -> None:
    """`flask backburner worker --burst` in process: sync and async tasks see `current_app`
    (a context of their own each), the tasks are unwrapped after, and the extension is
    found through `extensions`."""
    jobs = Backburner(f"sqlite:///{tmp_path}/jobs.db")

    @jobs.task
    def sync_name() -> str:
        return current_app.name

    @jobs.task
    async def async_name() -> str:
        return current_app.name

    flask_app = Flask("factory_made")
    ext = bb.BackburnerFlask(jobs, close_at_exit=False)
    ext.init_app(flask_app)
    assert bb.BackburnerFlask.of(flask_app) is ext
    try:
        first, second = sync_name.enqueue_sync(), async_name.enqueue_sync()
        outcome = flask_app.test_cli_runner().invoke(
            args=["backburner", "worker", "--burst", "--queues", "default"])
        assert outcome.exit_code == 0, outcome.output
        assert first.result_sync(timeout=5) == "factory_made"
        assert second.result_sync(timeout=5) == "factory_made"
        assert jobs.tasks[sync_name.name].func is sync_name.__wrapped__
        bad = flask_app.test_cli_runner().invoke(
            args=["backburner", "worker", "--log-level", "LOUD"])
        assert bad.exit_code == 2
        assert "unknown log level" in bad.output
    finally:
        jobs.close_sync()


def test_mounts_need_a_role() -> None:
    jobs = Backburner("memory://")
    with pytest.raises(TypeError, match="role= must be a callable"):
        bb.jobs_blueprint(jobs, role=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="role= must be a callable"):
        bb.dashboard_blueprint(jobs, role="admin")  # type: ignore[arg-type]


def test_the_core_imports_no_flask() -> None:
    """Only `backburner.flask` imports Flask (and a2wsgi): the package and its store-facing
    modules load without them."""
    import subprocess

    code = ("import sys, backburner, backburner.app, backburner.task, backburner.portal; "
            "print(sorted(m for m in ('flask', 'a2wsgi', 'werkzeug') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out


def test_the_extension_closes_the_store_at_exit(tmp_path: Path) -> None:
    """`close_at_exit` closes while thread pools still take work: a plain `atexit` hook
    comes after the standard library stopped them, and SQLite's close (through its pool,
    once a listing used it) would fail with a traceback."""
    import subprocess

    code = (
        "from flask import Flask\n"
        "from backburner import Backburner, flask as bb\n"
        f"jobs = Backburner('sqlite:///{tmp_path}/jobs.db')\n"
        "bb.BackburnerFlask(jobs, Flask('x'))\n"
        "jobs.run_sync(lambda: jobs.list_jobs())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out
    assert "Traceback" not in out.stderr, out.stderr
