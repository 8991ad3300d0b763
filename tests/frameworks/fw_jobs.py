"""The Backburner app the framework test apps serve: its store from BB_TEST_URL, one task
that reports progress, and the test's tokens and roles. Loaded by uvicorn from this
directory (`--app-dir`), so it imports as `fw_jobs`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from backburner import Backburner, JobContext

# The worker's "stopped after N job(s)" line is what the test reads to know it stopped.
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
logging.getLogger("backburner").addHandler(_handler)
logging.getLogger("backburner").setLevel(logging.INFO)

jobs = Backburner(os.environ["BB_TEST_URL"])

TOKENS = {"admin-token": "admin", "read-token": "read"}
"""Bearer token -> role."""


@jobs.task
async def crunch(steps: int, ctx: JobContext) -> int:
    for step in range(steps):
        await ctx.progress(step, total=steps, message=f"step {step + 1}")
        await asyncio.sleep(0.2)
    return steps * 2


def token_of(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" else None
