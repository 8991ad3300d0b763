"""A NUL character (or an absurd length) in a job id, a flow id or a filter, on every
surface: the JSON router, the dashboard, its CSV export and the CLI answer as for any
unknown job (404 / exit 1 with "no such job") or name the bad filter (4xx), never a 500 or a
store error. PostgreSQL cannot hold a NUL in text at all: it is the store these ran into;
SQLite is checked alongside, so the answers are the same."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from services import SERVER_BACKENDS, backend_url, destroy_store
from typer.testing import CliRunner

from backburner import Backburner
from backburner.cli import cli
from backburner.dashboard import mount_dashboard
from backburner.fastapi import backburner_lifespan, job_router

KINDS = ["sqlite", *[k for k in SERVER_BACKENDS if k == "postgres"]]
BAD_IDS = ["%00", "abc%00def", "x" * 1001]


def admin(request: Request) -> str:
    return "admin"


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    found = backend_url(request.param, tmp_path)

    async def seed() -> None:
        async with Backburner(found) as app:
            @app.task(name="charge", retries=0)
            async def charge(customer: str) -> str:
                return customer

            await charge.enqueue("ada")

    asyncio.run(seed())
    yield found
    destroy_store(found)


@pytest.fixture
def client(url: str) -> Iterator[TestClient]:
    app = Backburner(url)
    # The lifespan closes the app in the client's own event loop: a PostgreSQL pool left
    # open there was collected later, in another test, as unclosed sockets.
    api = FastAPI(lifespan=backburner_lifespan(app, worker=False))
    api.include_router(job_router(app))
    mount_dashboard(api, app, auth=admin)
    with TestClient(api, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_a_bad_id_is_not_found_over_http(client: TestClient, job_id: str) -> None:
    for method, path in (
        ("GET", f"/jobs/{job_id}"), ("POST", f"/jobs/{job_id}/cancel"),
        ("POST", f"/jobs/{job_id}/retry"), ("DELETE", f"/jobs/{job_id}"),
        ("GET", f"/flows/{job_id}"), ("GET", f"/dashboard/jobs/{job_id}"),
    ):
        response = client.request(method, path, headers={"origin": "http://testserver"})
        assert response.status_code == 404, (method, path, response.status_code, response.text)


@pytest.mark.parametrize("field", ["task", "queue", "search"])
def test_a_nul_in_a_filter_is_never_a_server_error(client: TestClient, field: str) -> None:
    # The JSON router answers a filter no store can hold as matching nothing; the dashboard
    # names it (4xx). Either way: never a 500, never a store error.
    assert client.get("/jobs", params={field: "a\x00b"}).json()["jobs"] == []
    assert client.get("/jobs/count", params={field: "a\x00b"}).json() == {"count": 0}
    for path in ("/dashboard/jobs", "/dashboard/jobs.csv"):
        response = client.get(path, params={"q" if field == "search" else field: "a\x00b"})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    # The export of a good filter is whole.
    export = client.get("/dashboard/jobs.csv")
    assert export.status_code == 200 and export.text.count("\n") >= 2, export.text


def test_a_bad_id_or_filter_on_the_cli(url: str) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["jobs", "show", "a\x00b", "--url", url])
    assert shown.exit_code == 1, shown.output
    assert "Traceback" not in shown.output and "BackendError" not in shown.output
    listed = runner.invoke(cli, ["jobs", "list", "--url", url, "--task", "a\x00b"])
    # Refused as a bad parameter naming the field (exit 2), not by a store or a traceback.
    assert listed.exit_code == 2, listed.output
    assert listed.exception is None or isinstance(listed.exception, SystemExit)
    assert "task" in listed.output and "Traceback" not in listed.output, listed.output
