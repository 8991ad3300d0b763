"""The browser-origin check every router applies to its writes (and `job_router` to its
WebSocket): one dependency, one `allowed_origins` option, the same answer everywhere.

A browser sends `Origin` with every cross-site POST/DELETE and WebSocket handshake, and
attaches the user's cookies to them: refusing foreign origins stops cross-site form posts
and WebSocket hijacking that ride on those cookies. Requests without `Origin` are not from a
browser (nothing rides on a user's cookies), so they pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException
from fastapi.params import Depends as DependsParam
from starlette.requests import HTTPConnection

Origins = frozenset[str] | None
"""Normalised allowed origins (`normalise_origins`); None: the request's own host only."""


def normalise_origins(allowed_origins: Sequence[str] | None) -> Origins:
    if isinstance(allowed_origins, str):
        # A lone string would be read as a set of one-letter origins: say so instead.
        raise TypeError("allowed_origins is a list of origins, e.g. ['https://app.example']")
    if allowed_origins is None:
        return None
    return frozenset(o.rstrip("/").lower() for o in allowed_origins)


def origin_allowed(connection: HTTPConnection, origins: Origins) -> bool:
    """Whether `connection`'s `Origin` (if any) may write: listed in `origins`, or, with
    None, the same scheme-less host as its `Host` header over http(s)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # not a browser: nothing rides on the user's cookies
    origin = origin.rstrip("/").lower()
    if origins is not None:
        return "*" in origins or origin in origins
    scheme, _, netloc = origin.partition("://")
    host = connection.headers.get("host", "").lower()
    return bool(host) and netloc == host and scheme in ("http", "https")


def origin_check(allowed_origins: Sequence[str] | None = None) -> DependsParam:
    """The dependency of every write route: 403 for a request from a foreign origin."""
    origins = normalise_origins(allowed_origins)

    async def same_origin(connection: HTTPConnection) -> None:
        if not origin_allowed(connection, origins):
            raise HTTPException(403, "cross-origin request refused")

    return DependsParam(same_origin)
