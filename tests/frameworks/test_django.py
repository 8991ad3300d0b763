"""backburner.django in a real Django project (tests/frameworks/django_site) on the test
PostgreSQL, served by a real gunicorn (2 sync workers, --preload: the Backburner app, the
URLconf and a sync call are made in the master before the fork) with a real worker process
(`manage.py backburner_worker`), on a PostgreSQL store in the same database (the enqueue
joins the view's transaction), on Redis and on SQLite (after commit).

One scenario per store: a view creating a row and enqueueing in `transaction.atomic()` (the
job runs and reads the row through the ORM); the same view raising after the enqueue
(neither row nor job); a view waiting for `result_sync`; the job router and the dashboard
behind Django's login (anonymous: 401 / redirect to the login page; a superuser logged in
through the admin's form: 200, links, cookie path and redirects under the mount prefix, a
dashboard form posted through the Django view); then SIGTERM, exit 0 and no
traceback in any log."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from child_process import Proc, processes
from services import (
    POSTGRES_URL,
    TEST_URLS,
    backend_url,
    destroy_store,
    free_port,
    require_service,
)

from .harness import STORES

SITE = Path(__file__).resolve().parent / "django_site"
PASSWORD = "s3cret-Test-pw"


def _psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL.split("?")[0], autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def django_env() -> Iterator[dict[str, str]]:
    """The Django tables (auth, sessions, admin, shop) migrated once for the module, in a
    schema of their own; a superuser made by `createsuperuser --noinput`."""
    require_service(POSTGRES_URL)
    schema = f"djt_{uuid.uuid4().hex[:12]}"
    _psql(f"CREATE SCHEMA {schema}")
    env = {**os.environ, "BB_DJANGO_PG": POSTGRES_URL, "BB_DJANGO_SCHEMA": schema,
           "BB_TEST_URL": "memory://", "PYTHONUNBUFFERED": "1",
           "DJANGO_SUPERUSER_USERNAME": "boss", "DJANGO_SUPERUSER_EMAIL": "boss@example.com",
           "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    try:
        for command in (["migrate", "--noinput"], ["createsuperuser", "--noinput"]):
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=SITE, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        yield env
    finally:
        _psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.parametrize("kind", STORES)
async def test_django_under_gunicorn(kind: str, django_env: dict[str, str],
                                     tmp_path: Path) -> None:
    await _on_store(kind, "gunicorn", django_env, tmp_path)


@pytest.mark.parametrize("kind", [kind for kind in STORES if kind == "postgres"])
async def test_django_under_uvicorn(kind: str, django_env: dict[str, str],
                                    tmp_path: Path) -> None:
    """The same project as an ASGI app: Django runs the sync views (and so the sync API and
    the a2wsgi bridge) in its own threads, the view's transaction is still the one joined."""
    await _on_store(kind, "uvicorn", django_env, tmp_path)


async def _on_store(kind: str, server: str, django_env: dict[str, str],
                    tmp_path: Path) -> None:
    url = backend_url(kind, tmp_path)
    try:
        await _scenario(kind, server, {**django_env, "BB_TEST_URL": url}, tmp_path)
    finally:
        if TEST_URLS[kind].server:
            await asyncio.to_thread(destroy_store, url)


async def _scenario(kind: str, kind_of_server: str, env: dict[str, str],
                    tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if kind_of_server == "gunicorn":
        args = ["-m", "gunicorn", "--workers", "2", "--preload",
                # Not one shared ~/.gunicorn/gunicorn.ctl for every server of the run.
                "--no-control-socket", "--chdir", str(SITE), "--bind", f"127.0.0.1:{port}",
                "site_project.wsgi:application"]
        ready = r"Booting worker with pid(.|\n)*Booting worker with pid"
    else:
        # Django's ASGI handler has no lifespan support: off, rather than uvicorn's probe.
        args = ["-m", "uvicorn", "site_project.asgi:application", "--app-dir", str(SITE),
                "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
        ready = "Uvicorn running on"
    with processes() as started:
        server = Proc([sys.executable, *args], env, tmp_path / "server.log")
        started.append(server)
        worker = Proc([sys.executable, str(SITE / "manage.py"), "backburner_worker",
                       "--concurrency", "4", "--queues", "default"], env,
                      tmp_path / "worker.log")
        started.append(worker)
        await server.wait_for(ready)
        await worker.wait_for(r"worker \S+ started")
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            await _wait_until_up(client)
            await _transactions(client, same_database=kind == "postgres")
            job_id = await _result_in_view(client)
            await _behind_login(client, job_id)

        # uvicorn (0.29+) ends a clean shutdown by raising the signal it caught again.
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM), server.text()
        assert worker.stop(signal.SIGTERM) == 0, worker.text()
        done = "Shutting down: Master" if kind_of_server == "gunicorn" else "Finished server"
        assert done in server.text(), server.text()
        assert re.search(r"worker \S+ stopped after \d+ job\(s\)", worker.text()), worker.text()
        for log in (server.text(), worker.text()):
            assert "Traceback" not in log, log
            assert "ERROR" not in log, log


async def _wait_until_up(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if (await client.get("/stats/")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "gunicorn never answered /stats/"
        await asyncio.sleep(0.1)


async def _transactions(client: httpx.AsyncClient, *, same_database: bool) -> None:
    # The Django tables are the module's (each store's run adds its rows); the store is new.
    before = (await client.get("/stats/")).json()
    assert before["jobs"] == 0, before
    placed = await client.post("/orders/", data={"name": "kept"})
    assert placed.status_code == 200, placed.text
    body = placed.json()
    # In the view's transaction (a handle) when the store is Django's database; after the
    # commit (no handle yet) otherwise.
    assert (body["job"] is not None) == same_database, body
    # The worker's task reads the committed row through the ORM and marks it.
    deadline = time.monotonic() + 20
    while not (await client.get(f"/orders/{body['order']}/")).json()["processed"]:
        assert time.monotonic() < deadline, "the job never processed the order"
        await asyncio.sleep(0.1)

    refused = await client.post("/orders/", data={"name": "dropped", "fail": "1"})
    assert refused.status_code == 409, refused.text
    stats = (await client.get("/stats/")).json()
    # Neither the row nor its job: one job in the store, the first order's.
    assert stats == {"jobs": 1, "orders": [*before["orders"], "kept"]}, stats


async def _result_in_view(client: httpx.AsyncClient) -> str:
    waited = await client.get("/wait/", params={"n": 21})
    assert waited.status_code == 200, waited.text
    assert waited.json()["result"] == 42
    return str(waited.json()["id"])


async def _behind_login(client: httpx.AsyncClient, job_id: str) -> None:
    api = f"/jobs/api/jobs/{job_id}"
    anonymous = await client.get(api)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"] == "application/problem+json"
    page = await client.get("/jobs/")
    assert page.status_code == 302, page.text
    assert page.headers["location"] == "/admin/login/?next=/jobs/"

    await _log_in(client)
    job: Any = await client.get(api)
    assert job.status_code == 200, job.text
    assert job.json()["state"] == "completed"
    assert job.json()["result"] == 42
    missing = await client.get("/jobs/api/jobs/no-such-job")
    assert missing.status_code == 404, missing.text

    page = await client.get("/jobs/")
    assert page.status_code == 200, page.text
    # The dashboard's links carry the prefix it is mounted at.
    assert 'href="/jobs/jobs' in page.text, page.text
    detail = await client.get(f"/jobs/jobs/{job_id}")
    assert detail.status_code == 200, detail.text
    assert job_id in detail.text
    await _delete_from_dashboard(client, detail.text, job_id)


async def _delete_from_dashboard(client: httpx.AsyncClient, page: str, job_id: str) -> None:
    """The job page's Delete form, posted as a browser would: the dashboard's CSRF cookie
    (set under the mount's path) and field go through the Django view, and the redirect
    it answers stays under the prefix."""
    form = re.search(r'<form method="post" action="([^"]+/delete)"[^>]*>\s*'
                     r'<input type="hidden" name="csrf" value="([^"]+)">\s*'
                     r'<input type="hidden" name="next" value="([^"]+)">', page)
    assert form, page
    action, token, next_page = form.groups()
    assert action == f"/jobs/jobs/{job_id}/delete", action
    assert any(c.name.startswith("bb_csrf") and c.path == "/jobs/" for c in client.cookies.jar), \
        [(c.name, c.path) for c in client.cookies.jar]
    done = await client.post(action, data={"csrf": token, "next": next_page})
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/jobs/jobs"), done.headers
    assert (await client.get(f"/jobs/api/jobs/{job_id}")).status_code == 404


async def _log_in(client: httpx.AsyncClient) -> None:
    """Through the admin's login form, as a browser: its CSRF cookie and field, then the
    session cookie the client keeps."""
    form = await client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text
    done = await client.post("/admin/login/", data={
        "csrfmiddlewaretoken": token.group(1), "username": "boss", "password": PASSWORD,
        "next": "/jobs/"})
    assert done.status_code == 302, done.text
    assert "sessionid" in client.cookies


def test_shares_database_compares_host_port_and_name() -> None:
    """The transactional way only when the store is the very database Django's connection
    uses, through psycopg 3; anything unsure is the after-commit way."""
    from types import SimpleNamespace

    from backburner.django import shares_database

    def django(host: str = "127.0.0.1", port: Any = "", name: str = "shop",
               vendor: str = "postgresql", driver: str = "psycopg") -> Any:
        return SimpleNamespace(vendor=vendor, Database=SimpleNamespace(__name__=driver),
                               settings_dict={"HOST": host, "PORT": port, "NAME": name})

    store = "postgresql://u:p@localhost:5432/shop?schema=jobs"
    assert shares_database(store, django())
    assert shares_database("postgres://127.0.0.1/shop", django(host="", port=5432))
    assert not shares_database(store, django(name="other"))
    assert not shares_database(store, django(port="5433"))
    assert not shares_database(store, django(host="db.internal"))
    assert not shares_database(store, django(driver="psycopg2"))
    assert not shares_database(store, django(vendor="sqlite"))
    assert not shares_database("redis://localhost/0", django())
    assert not shares_database("postgresql://h1:5432,h2:5432/shop", django())


def test_enqueue_on_commit_chooses_the_connection() -> None:
    from backburner import Backburner
    from backburner.django import enqueue_on_commit

    app = Backburner("memory://")

    @app.task
    def noop() -> None:
        return None

    with pytest.raises(TypeError, match="drop connection="):
        enqueue_on_commit(noop.options(connection=object()))


def test_worker_command_reports_a_bad_app(django_env: dict[str, str]) -> None:
    """A path naming no app is one line and exit 1 (Django's CommandError), not a traceback."""
    done = subprocess.run(
        [sys.executable, "manage.py", "backburner_worker", "--app", "no_such_module:app"],
        cwd=SITE, env=django_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CommandError: cannot import 'no_such_module'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
