"""POST /tasks/{name} stores the JSON it was sent, or says why not (422 naming the argument):
an integer past 64 bits is refused, not rounded to a float (D7), and a non-finite number never
gets in. Real SQLite file, no worker: what matters is what is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backburner import Backburner
from backburner.fastapi import backburner_lifespan, job_router

BIG = "123456789012345678901234567890"


@pytest.fixture
def jobs(tmp_path: Path) -> Backburner:
    return Backburner(f"sqlite:///{tmp_path}/json.db")


@pytest.fixture
def client(jobs: Backburner) -> Iterator[TestClient]:
    @jobs.task(name="store_extra")
    async def store_extra(extra: dict[str, Any], note: str = "") -> None: ...

    @jobs.task(name="store_any")
    async def store_any(payload: Any) -> None: ...

    @jobs.task(name="count")
    async def count(n: int) -> None: ...

    api = FastAPI(lifespan=backburner_lifespan(jobs, worker=False))
    api.include_router(job_router(jobs, expose=[store_extra, store_any, count]))
    with TestClient(api) as c:
        yield c


def post(client: TestClient, task: str, body: str) -> Any:
    return client.post(f"/tasks/{task}", content=body.encode(),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize(("task", "body", "argument", "path"), [
    ("store_extra", f'{{"extra": {{"n": {BIG}}}}}', "extra", "extra['n']"),
    ("store_extra", f'{{"extra": {{"a": [1, 2, -{BIG}]}}}}', "extra", "extra['a'][2]"),
    ("store_extra", '{"extra": {"n": 9223372036854775808}}', "extra", "extra['n']"),
    ("store_extra", '{"extra": {"n": -9223372036854775809}}', "extra", "extra['n']"),
    ("store_any", f'{{"payload": [{BIG}]}}', "payload", "payload[0]"),
    ("store_any", f'{{"payload": {BIG}}}', "payload", None),
    ("count", f'{{"n": {BIG}}}', "n", None),
    ("count", '{"n": 18446744073709551615}', "n", None),
])
def test_an_integer_past_64_bits_is_a_422_naming_it(
    client: TestClient, task: str, body: str, argument: str, path: str | None
) -> None:
    response = post(client, task, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"argument {argument!r}" in detail, detail
    assert "outside the signed 64-bit range" in detail, detail
    if path is not None:
        assert f"(at {path})" in detail, detail
    assert "e+" not in detail  # never the rounded float


def test_integers_inside_64_bits_are_stored_exactly(
    client: TestClient, jobs: Backburner
) -> None:
    body = ('{"extra": {"max": 9223372036854775807, "min": -9223372036854775808, '
            '"digits": "123456789012345678901234567890", "f": 1.2345678901234567891}}')
    response = post(client, "store_extra", body)
    assert response.status_code == 202, response.text
    assert client.portal is not None
    record = client.portal.call(jobs.get_job, response.json()["id"])
    assert record is not None
    assert record.kwargs["extra"] == {
        "max": 2**63 - 1, "min": -(2**63), "digits": BIG, "f": 1.2345678901234567}


@pytest.mark.parametrize("body", ['{"payload": NaN}', '{"payload": [Infinity]}',
                                  '{"extra": {"x": -Infinity}}'])
def test_non_finite_numbers_are_not_json(client: TestClient, body: str) -> None:
    task = "store_extra" if "extra" in body else "store_any"
    assert post(client, task, body).status_code == 400
