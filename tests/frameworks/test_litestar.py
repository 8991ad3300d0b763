"""backburner.litestar in a real Litestar app under uvicorn (tests/frameworks/
litestar_app.py): BackburnerPlugin with the embedded worker, the job router and the
dashboard mounted behind a Litestar guard and roles; see harness.py for the scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from backburner import Backburner
from backburner.litestar import dashboard_mount, jobs_mount
from backburner.starlette import Role

from .harness import STORES, exercise


@pytest.mark.parametrize("kind", STORES)
async def test_litestar_app(kind: str, tmp_path: Path) -> None:
    await exercise("litestar_app", kind, tmp_path)


async def test_litestar_app_behind_a_root_path(tmp_path: Path) -> None:
    await exercise("litestar_app", "sqlite", tmp_path, root_path="/app")


async def test_a_litestar_exception_from_role_keeps_its_status_in_process() -> None:
    """`role` raising Litestar's own HTTPException answers its status (not a 500), and a
    guard refuses before the mounted app runs."""
    jobs = Backburner("memory://")

    def role_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Role | None:
        raise PermissionDeniedException("not on this team")

    def closed(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        raise NotAuthorizedException("sign in first")

    api = Litestar([jobs_mount(jobs, "/bb", role=role_of),
                    dashboard_mount(jobs, "/dashboard", guards=[closed])])
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.get("/bb/jobs/some-id")
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "not on this team"
        guarded = await client.get("/dashboard/")
        assert guarded.status_code == 401, guarded.text
