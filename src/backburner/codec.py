"""JSON in and out of the store. Never pickle: a payload is data, not code."""

from __future__ import annotations

from typing import Any

import orjson


class PayloadError(ValueError):
    """Stored bytes are not the JSON Backburner wrote."""


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not valid JSON: {exc}") from None
