"""The demo's OpenAPI schema as a contract: schemathesis, every check it has (status codes,
content types, headers and bodies as documented, problem details for every error;
schema-valid data accepted and schema-violating data refused; a 405 with `Allow` for
undocumented methods; links followed statefully), positive and negative data, over the
running demo app (uvicorn, real SQLite file, real SMTP sink): zero failures. The few
answers OpenAPI cannot state are listed, with their reasons, in tests/api/schemathesis.toml."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from demo_harness import Demo, running_demo

from examples.demo.settings import Settings
from examples.demo.smtp_sink import SmtpSink
from tests.api.servers import run_schemathesis


@pytest.fixture
async def fuzzed_demo(settings: Settings, sink: SmtpSink) -> AsyncIterator[Demo]:
    """The demo with a short shutdown grace: the fuzzer starts long jobs (the progress
    demo's), and the default 30 s grace made the teardown wait for them for 30 s."""
    async with running_demo(settings, sink, grace=1.0) as running:
        yield running


@pytest.mark.timeout(600)
async def test_schemathesis_all_checks_find_nothing_on_the_demo(fuzzed_demo: Demo) -> None:
    demo = fuzzed_demo
    # The CLI in a thread: the demo's server runs on this test's event loop.
    report = await asyncio.to_thread(run_schemathesis, f"{demo.base}/openapi.json",
                                     max_examples=30)
    assert report.returncode == 0, report.output[-20_000:]
    assert "generated" in report.summary, report.output[-5_000:]
    print(f"\n{report.summary}")
