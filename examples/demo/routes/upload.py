"""S15: a CSV upload streamed to disk, its rows counted by a job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from backburner.fastapi import problem
from examples.demo.routes.common import job_link
from examples.demo.routes.types import ERRORS
from examples.demo.tasks import DemoTasks
from examples.demo.uploads import receive_csv


def router(tasks: DemoTasks) -> APIRouter:
    api = APIRouter(tags=["seeds: upload"], responses=ERRORS)
    settings = tasks.services.settings

    @api.post(
        "/upload",
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"}}},
            "encoding": {"file": {"contentType": "text/csv"}}}}}},
        responses={413: problem("larger than the limit"),
                   415: problem("not multipart/form-data, or the file is not CSV text: no "
                                ".csv name, a declared type that is neither CSV nor text, "
                                "or content that is not UTF-8 text; the detail says "
                                "which, and nothing is stored"),
                   422: problem("no `file` field in the form")},
    )
    async def upload_file(request: Request) -> dict[str, Any]:
        stored = await receive_csv(request, settings.upload_dir, settings.max_upload_bytes)
        job = await tasks.count_rows.enqueue(stored.stored_name, stored.filename)
        return {"filename": stored.filename, "stored_name": stored.stored_name,
                "size": stored.size, "message": "uploaded; the rows are counted in the "
                "background", **job_link(request, job.id)}

    return api
