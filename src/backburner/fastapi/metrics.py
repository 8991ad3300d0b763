"""`GET /metrics`: the app's Prometheus metrics (backburner.metrics), for a scraper.

    api.include_router(metrics_router(jobs, dependencies=[Depends(scraper_auth)]))
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Response
from fastapi.params import Depends as DependsParam

from backburner.app import Backburner
from backburner.errors import BackendUnavailableError
from backburner.metrics import CONTENT_TYPE, JobMetrics


def metrics_router(
    app: Backburner, *, dependencies: Sequence[DependsParam] = (), path: str = "/metrics"
) -> APIRouter:
    metrics = JobMetrics.of(app)  # shared with the app's embedded workers
    router = APIRouter(dependencies=list(dependencies), tags=["metrics"])

    @router.get(path, operation_id="backburner_metrics", response_class=Response,
                responses={200: {"content": {CONTENT_TYPE: {}}},
                           503: {"description": "the job store is unreachable"}})
    async def get_metrics() -> Response:
        try:
            body = await metrics.render()
        except BackendUnavailableError as exc:
            return Response(f"job store unreachable: {exc}\n", status_code=503,
                            media_type="text/plain", headers={"Retry-After": "5"})
        return Response(body, media_type=CONTENT_TYPE)

    return router
