"""The demo's OpenAPI schema as a contract: schemathesis, every check it has (status codes,
content types, headers and bodies as documented, problem details for every error;
schema-valid data accepted and schema-violating data refused; a 405 with `Allow` for
undocumented methods; links followed statefully), positive and negative data, over the
running demo app (uvicorn, real SQLite file, real SMTP sink): zero failures. The few
answers OpenAPI cannot state are listed, with their reasons, in tests/api/schemathesis.toml."""

from __future__ import annotations

import asyncio

import pytest
from demo_harness import Demo

from tests.api.servers import run_schemathesis


@pytest.mark.timeout(600)
async def test_schemathesis_all_checks_find_nothing_on_the_demo(demo: Demo) -> None:
    # The CLI in a thread: the demo's server runs on this test's event loop.
    report = await asyncio.to_thread(run_schemathesis, f"{demo.base}/openapi.json",
                                     max_examples=30)
    assert report.returncode == 0, report.output[-20_000:]
    assert "generated" in report.summary, report.output[-5_000:]
    print(f"\n{report.summary}")
