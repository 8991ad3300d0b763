"""One error shape for every HTTP answer that is not a success: RFC 9457 problem details
(`application/problem+json`: type, title, status, detail; a 422 adds the list of
validation errors), documented in OpenAPI exactly as sent.

- `ProblemRoute` is the route class of the library's routers: an `HTTPException` or a
  request validation error raised by a route or one of its dependencies (yours included)
  leaves as a problem, with no app-level setup.
- `problem(description)` and `VALIDATION_PROBLEM` document those answers; give them to
  `responses=` of your own routes (`APIRouter(responses=problem_responses())`).
- `install_problem_details(api)` does the same for a whole app: its own routes, unknown
  paths (404) and methods (405, with an `Allow` naming every method of the path).
- `close_methods(router)` answers every method a path does not document with a 405 and
  that path's methods in `Allow`, before a later route of another path can take it (e.g.
  `DELETE /jobs/count` reaching `DELETE /jobs/{job_id}`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, compile_path

from backburner.errors import BackendUnavailableError, InvalidArgumentsError

PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="a URI naming the problem type")
    title: str = Field(description="the status code's phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong with this request, for people")


class ValidationErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where: body, query, path or header, then names")
    msg: str
    type: str


class ValidationProblem(Problem):
    """A 422: the request does not fit the documented schema (or the task's signature)."""

    errors: list[ValidationErrorItem] = Field(
        default_factory=list, description="each field that was refused, when known")


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` put in place: it is written straight into
    a response of the OpenAPI document, where `#/$defs/...` would not resolve."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


PROBLEM_SCHEMA = _inline(Problem)
VALIDATION_SCHEMA = _inline(ValidationProblem)
Responses = dict[int | str, dict[str, Any]]


def problem(description: str) -> dict[str, Any]:
    """An OpenAPI response of `responses=`: a problem, described."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}


VALIDATION_PROBLEM: dict[str, Any] = {
    "description": "the request does not fit the schema",
    "content": {PROBLEM_JSON: {"schema": VALIDATION_SCHEMA}},
}


def problem_responses(**descriptions: str) -> Responses:
    """422 (validation) plus a problem per status, e.g. `problem_responses(s404="no such
    job")`, for `responses=` of a route or a router."""
    out: Responses = {422: VALIDATION_PROBLEM}
    for key, description in descriptions.items():
        out[int(key.removeprefix("s"))] = problem(description)
    return out


def problem_response(
    status: int, detail: str, *, headers: dict[str, str] | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_JSON)


def validation_problem(exc: RequestValidationError) -> JSONResponse:
    # The refused input is not echoed back: it may not be encodable (NaN, bytes) and it
    # is the client's own anyway; where and why are enough.
    errors = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
               "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", "invalid"))}
              for e in exc.errors()]
    first = errors[0] if errors else None
    detail = "the request does not fit the schema"
    if first is not None:
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return problem_response(422, detail, errors=errors)


def http_problem(exc: StarletteHTTPException, scope: Mapping[str, Any] | None = None) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and scope is not None:
        # Starlette names the methods of the one route it tried; the path may have more.
        allow = allowed_methods(scope)
        if allow:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = ", ".join(allow)
    if exc.status_code in (204, 304) or exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(exc.status_code, detail, headers=headers)


def allowed_methods(scope: Mapping[str, Any]) -> list[str]:
    """The methods of the path template the request's path is routed to: that of the
    first route whose path matches (whatever its method), over every route of that
    template, in routing order (included routers too)."""
    router = scope.get("router") or getattr(scope.get("app"), "router", None)
    routes: Sequence[BaseRoute] = getattr(router, "routes", ())
    path = get_route_path(dict(scope))
    template: str | None = None
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        if route.path is None or route.methods is None or _is_closer(route):
            continue
        if template is None and compile_path(route.path)[0].match(path):
            template = route.path
        if route.path == template:
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class ProblemRoute(APIRoute):
    """An `APIRoute` whose errors leave as problems (see the module's docstring)."""

    def get_route_handler(self) -> Endpoint:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return validation_problem(exc)
            except StarletteHTTPException as exc:
                return http_problem(exc, request.scope)

        return answer


def _is_closer(route: object) -> bool:
    return getattr(getattr(route, "endpoint", None), "_backburner_closer", False)


def close_methods(router: APIRouter) -> None:
    """After each path's last route, a hidden route answering every other method with a
    405 problem whose `Allow` lists the path's own methods (see the module's docstring)."""
    routes = list(router.routes)
    last: dict[str, int] = {}
    methods: dict[str, set[str]] = {}
    for index, route in enumerate(routes):
        if isinstance(route, APIRoute):
            last[route.path] = index
            methods.setdefault(route.path, set()).update(route.methods or ())
    closers: dict[int, APIRoute] = {}
    for path, index in last.items():
        taken = methods[path] | ({"HEAD"} if "GET" in methods[path] else set())
        others = [m for m in HTTP_METHODS if m not in taken]
        if not others:
            continue
        closers[index] = ProblemRoute(path, _closer(sorted(taken)), methods=others,
                                      include_in_schema=False,
                                      name=f"{routes[index].name}_405")  # type: ignore[attr-defined]
    router.routes[:] = [r for i, route in enumerate(routes)
                        for r in ((route, closers[i]) if i in closers else (route,))]


def _closer(allow: list[str]) -> Callable[[], Coroutine[Any, Any, Response]]:
    async def method_not_allowed() -> Response:
        raise HTTPException(405, "this path does not take this method",
                            headers={"Allow": ", ".join(allow)})

    method_not_allowed._backburner_closer = True  # type: ignore[attr-defined]
    return method_not_allowed


def install_problem_details(api: FastAPI) -> None:
    """Every error of `api` as a problem: `HTTPException`s (404 and 405 of routing
    included, a 405's `Allow` naming all of the path's methods), request validation (422
    with the errors), an unreachable job store (503, `Retry-After`) and arguments a task
    refuses (422)."""

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return http_problem(exc, request.scope)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc)

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        return problem_response(503, f"the job store is unavailable: {exc}",
                                headers={"Retry-After": "5"})

    async def on_invalid(request: Request, exc: Exception) -> Response:
        return problem_response(422, str(exc))

    api.add_exception_handler(StarletteHTTPException, on_http)
    api.add_exception_handler(RequestValidationError, on_validation)
    api.add_exception_handler(BackendUnavailableError, on_unavailable)
    api.add_exception_handler(InvalidArgumentsError, on_invalid)
