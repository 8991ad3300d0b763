"""R19 at CI size for the job router: schemathesis over its OpenAPI schema (positive and
negative data, every operation, >= 2,000 requests in all) against a real uvicorn on a free
loopback port, with an embedded worker on a tmp SQLite file: no response is a 5xx, and every
response fits the schema (status code, content type, headers, body). Plus oversize bodies
(413, declared or streamed) and deeply nested JSON (4xx), never a 500."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
import schemathesis
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backburner import Backburner, JobContext
from backburner.fastapi import backburner_lifespan, job_router
from tests.api.servers import serving

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
TOTAL_REQUESTS = 2_000
LIMIT = 64 * 1024  # the router's max_body_bytes in this app


def build(url: str) -> tuple[FastAPI, Counter[int]]:
    jobs = Backburner(url, poll_interval=0.2)

    @jobs.task(name="add", retries=0)
    async def add(a: int, b: int = 0) -> int:
        """Adds two integers."""
        return a + b

    @jobs.task(name="greet", retries=1, backoff=0.01)
    async def greet(name: str, ctx: JobContext, times: int = 1,
                    tags: list[str] | None = None, extra: dict[str, Any] | None = None) -> str:
        """Greets someone, reporting progress."""
        await ctx.progress(1, total=1, message=name[:50])
        if name == "fail":
            raise ValueError("no greeting for you")
        return f"hello {name}" * max(0, min(times, 3))

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=4))
    api.include_router(job_router(jobs, expose=[add, greet], keepalive=0.5,
                                  max_body_bytes=LIMIT))
    statuses: Counter[int] = Counter()

    @api.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        statuses[response.status_code] += 1
        return response

    return api, statuses


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[tuple[str, Counter[int]]]:
    api, statuses = build(f"sqlite:///{tmp_path}/fuzz.db")
    with serving(api) as base:
        yield base, statuses


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fuzzed: tuple[str, Counter[int]],
) -> None:
    base, statuses = fuzzed
    session = requests.Session()
    # Real ids of jobs in every end state, so cancel/retry/delete/events meet real jobs too.
    known = [session.post(f"{base}/tasks/greet", json={"name": n}, timeout=10).json()["id"]
             for n in ("ada", "fail", "bob")]
    spec = session.get(f"{base}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"GET /jobs", "GET /jobs/{job_id}", "POST /jobs/{job_id}/cancel",
            "POST /jobs/{job_id}/retry", "DELETE /jobs/{job_id}", "GET /jobs/{job_id}/events",
            "POST /tasks/add", "POST /tasks/greet"} <= labels, labels  # and any newer route
    per_operation = TOTAL_REQUESTS // len(operations) + 15
    sent: Counter[str] = Counter()
    no_negative: list[str] = []

    for operation in operations:
        takes_id = any(p.name == "job_id" for p in operation.path_parameters)
        # Negative data first, half the budget; the positive run gets what is left.
        for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if takes_id and mode is GenerationMode.POSITIVE:
                strategy = st.one_of(strategy, st.sampled_from(known).flatmap(
                    lambda job_id, op=operation: op.as_strategy(
                        path_parameters={"job_id": job_id})))
            budget = (per_operation // 2 if mode is GenerationMode.NEGATIVE
                      else per_operation - sent[operation.label])

            @settings(max_examples=budget, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=base, session=session, timeout=30)
                sent[case.operation.label] += 1
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # Nothing in this operation can be invalid (a lone string path parameter):
                # there is no negative data to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
                no_negative.append(operation.label)

    assert sum(sent.values()) >= TOTAL_REQUESTS, sent
    assert set(sent) == labels
    assert not [s for s in statuses if s >= 500], statuses
    print(f"\nR19: {sum(sent.values())} requests over {len(sent)} operations; "
          f"statuses {dict(sorted(statuses.items()))}; no negative data for {no_negative}")


async def test_oversize_bodies_are_413_and_deep_nesting_a_4xx(
    fuzzed: tuple[str, Counter[int]],
) -> None:
    base, statuses = fuzzed
    json_headers = {"content-type": "application/json"}
    async with httpx2.AsyncClient(base_url=base, timeout=30) as client:
        declared = await client.post("/tasks/greet", headers=json_headers,
                                     content=b'{"name": "' + b"x" * (LIMIT + 1) + b'"}')
        assert declared.status_code == 413, declared.text

        async def chunks() -> Any:  # no Content-Length: the limit is applied while reading
            yield b'{"name": "'
            for _ in range(LIMIT // 1024 + 2):
                yield b"x" * 1024
            yield b'"}'

        streamed = await client.post("/tasks/greet", headers=json_headers, content=chunks())
        assert streamed.status_code == 413, streamed.text
        just_under = await client.post("/tasks/greet", headers=json_headers,
                                       content=b'{"name": "' + b"x" * (LIMIT - 20) + b'"}')
        assert just_under.status_code == 202, just_under.text

        for depth in (300, 1_000, 5_000, 20_000):
            for opened, closed in (("[", "]"), ('{"a":', "}")):
                body = '{"name": "n", "extra": {"x": ' + opened * depth + "1" + closed * depth
                response = await client.post("/tasks/greet", headers=json_headers,
                                             content=(body + "}}").encode())
                assert 400 <= response.status_code < 500, (depth, response.text)
    assert not [s for s in statuses if s >= 500], statuses


def test_a_cursor_past_64_bits_is_a_422_not_a_500(fuzzed: tuple[str, Counter[int]]) -> None:
    """Regression (found by schemathesis): a 26-digit cursor reached SQLite as an integer it
    cannot hold (OverflowError, a 500)."""
    base, _ = fuzzed
    for cursor in ("9" * 19, "9" * 26, "18446744073709551616"):
        response = requests.get(f"{base}/jobs", params={"cursor": cursor}, timeout=10)
        assert response.status_code == 422, (cursor, response.text)
    assert requests.get(f"{base}/jobs", params={"cursor": "9" * 18},
                        timeout=10).status_code == 200
