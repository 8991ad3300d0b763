"""backburner.starlette in a real Starlette app under uvicorn (tests/frameworks/
starlette_app.py): lifespan with the embedded worker, the job router and the dashboard
mounted, roles from Starlette's AuthenticationMiddleware; see harness.py for the scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.routing import Mount

from backburner import Backburner
from backburner import starlette as bb

from .harness import STORES, exercise


@pytest.mark.parametrize("kind", STORES)
async def test_starlette_app(kind: str, tmp_path: Path) -> None:
    await exercise("starlette_app", kind, tmp_path)


async def test_starlette_app_behind_a_root_path(tmp_path: Path) -> None:
    await exercise("starlette_app", "sqlite", tmp_path, root_path="/app")


async def test_what_role_answers_decides_in_process() -> None:
    """No credentials (None, from an async `role` too) is a 401, a value that is not a role
    a 403, both problem details and before the store is touched; `role` with the FastAPI
    options it replaces is refused at build time."""
    jobs = Backburner("memory://")
    answers: dict[str, str | None] = {"x": None}

    async def role_of(conn: HTTPConnection) -> Any:
        return answers["x"]

    api = Starlette(routes=[Mount("/bb", bb.jobs_asgi(jobs, role=role_of))])
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        missing = await client.get("/bb/jobs/some-id")
        assert missing.status_code == 401
        assert missing.headers["content-type"].startswith("application/problem+json")
        answers["x"] = "root"
        assert (await client.get("/bb/jobs/some-id")).status_code == 403
    with pytest.raises(TypeError, match="role= or FastAPI dependencies"):
        bb.jobs_asgi(jobs, role=role_of, dependencies=[])
    with pytest.raises(TypeError, match="role= or auth="):
        bb.dashboard_asgi(jobs, role=role_of, auth=lambda: "admin")
