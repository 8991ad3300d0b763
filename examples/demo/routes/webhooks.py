"""S7 and S11: outgoing HTTP from jobs: an async fetch, and a webhook with retries and
exponential backoff. Both go through the SSRF guard (see `examples.demo.ssrf`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request

from backburner.fastapi import problem
from examples.demo.routes.common import job_link
from examples.demo.routes.types import ERRORS, URL_PATTERN
from examples.demo.ssrf import BlockedAddressError, UnsafeURLError, precheck
from examples.demo.tasks import DemoTasks

URL = Annotated[str, Query(min_length=1, max_length=2000, pattern=URL_PATTERN)]
REFUSED = {403: problem("the URL points at an internal address")}


def router(tasks: DemoTasks) -> APIRouter:
    api = APIRouter(tags=["seeds: outgoing HTTP"], responses=ERRORS)
    policy = tasks.services.policy

    async def checked(url: str) -> None:
        try:
            await precheck(url, policy)
        except UnsafeURLError as exc:
            raise HTTPException(422, f"refused URL: {exc}") from None
        except BlockedAddressError as exc:  # a well-formed URL, a forbidden destination
            raise HTTPException(403, f"refused URL: {exc}") from None

    @api.post("/fetch", responses=REFUSED)
    async def fetch_url(url: URL, request: Request) -> dict[str, Any]:
        """S7: fetch a URL with an async client in the background; the status code is the
        job's result."""
        await checked(url)
        job = await tasks.fetch_url.enqueue(url)
        return {"message": "fetching in the background", **job_link(request, job.id)}

    @api.post("/webhook", responses=REFUSED)
    async def trigger_webhook(
        url: URL, request: Request,
        data: Annotated[dict[str, Any], Body(description="the JSON payload to deliver")],
    ) -> dict[str, Any]:
        """S11: POST `data` to `url`; 3 tries, waiting 1 s then 2 s (base x 2^attempt)."""
        await checked(url)
        job = await tasks.send_webhook.enqueue(url, data)
        return {"message": "webhook scheduled", **job_link(request, job.id)}

    return api
