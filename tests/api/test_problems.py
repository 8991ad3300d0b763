"""Every error of the library's routers is an RFC 9457 problem (`application/problem+json`,
type/title/status/detail, and the validation errors for a 422), documented so in OpenAPI;
a method a path does not document is a 405 whose `Allow` names all of the path's methods;
`install_problem_details` gives an app's own routes the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient

from backburner import Backburner
from backburner.fastapi import (
    PROBLEM_JSON,
    install_problem_details,
    job_router,
    problem,
    problem_responses,
    queue_router,
)


def build(tmp_path: Path) -> FastAPI:
    jobs = Backburner(f"sqlite:///{tmp_path}/problems.db")

    @jobs.task(name="hello")
    async def hello(name: str) -> str:
        return name

    api = FastAPI()
    api.include_router(job_router(jobs, expose=[hello]))
    api.include_router(queue_router(jobs, name="ops"), prefix="/ops")
    return api


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build(tmp_path)) as c:
        yield c


def is_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM_JSON  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == "about:blank" and body["status"] == status
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    return dict(body)


def test_the_routers_answer_problems(client: TestClient) -> None:
    assert "no job" in str(is_problem(client.get("/jobs/nope"), 404)["detail"])
    invalid = is_problem(client.get("/jobs", params={"limit": "many"}), 422)
    assert invalid["errors"] == [{"loc": ["query", "limit"], "type": "int_parsing",
                                  "msg": "Input should be a valid integer, unable to parse "
                                         "string as an integer"}]
    assert "limit" in str(invalid["detail"])
    is_problem(client.post("/jobs/bulk/retry", json={"confirm": True,
                                                     "expected_count": False}), 422)
    is_problem(client.post("/tasks/hello", json={"name": 1}), 422)
    is_problem(client.post("/tasks/hello", content=b"{", headers={
        "content-type": "application/json"}), 400)
    is_problem(client.post("/ops/queues/q/pause", headers={"Origin": "http://evil"}), 403)


def test_undocumented_methods_are_405_with_the_paths_methods(client: TestClient) -> None:
    for method, path, allow in [
        ("PUT", "/jobs/abc", "DELETE, GET, HEAD"),
        ("PATCH", "/jobs/abc", "DELETE, GET, HEAD"),
        # Not taken by DELETE /jobs/{job_id}: /jobs/count is a path of its own.
        ("DELETE", "/jobs/count", "GET, HEAD"),
        ("GET", "/tasks/hello", "POST"),
        ("OPTIONS", "/jobs", "GET, HEAD"),
        ("DELETE", "/ops/queues/q/pause", "POST"),
    ]:
        response = client.request(method, path)
        is_problem(response, 405)
        assert response.headers["allow"] == allow, (method, path)


def test_the_schema_documents_problems_only(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)
            assert "422" in operation["responses"], (method, path)


def test_install_problem_details_covers_an_apps_own_routes(tmp_path: Path) -> None:
    api = FastAPI()
    install_problem_details(api)

    @api.get("/things/{n}", responses={**problem_responses(), 404: problem("no such thing")})
    async def thing(n: int, colour: Annotated[str, Query(max_length=5)] = "red") -> int:
        if n > 3:
            raise HTTPException(404, "no such thing")
        return n

    @api.post("/things/{n}")
    async def make(n: int) -> int:
        return n

    with TestClient(api) as c:
        assert c.get("/things/1").json() == 1
        is_problem(c.get("/things/9"), 404)
        is_problem(c.get("/things/x"), 422)
        is_problem(c.get("/nowhere"), 404)
        wrong = c.put("/things/1")
        is_problem(wrong, 405)
        assert wrong.headers["allow"] == "GET, HEAD, POST"  # both routes of the path
        spec = c.get("/openapi.json").json()
        assert list(spec["paths"]["/things/{n}"]["get"]["responses"]["422"]["content"]) == [
            PROBLEM_JSON]
