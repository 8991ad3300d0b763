"""JSON in and out of the store. Never pickle: a payload is data, not code."""

from __future__ import annotations

import json
import re
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


_LONG_NUMBER = re.compile(rb"[0-9]{19}")
"""19 digits in a row: the shortest integer orjson may read as a float (below -2**63)."""


def loads_exact(data: str | bytes) -> Any:
    """`loads` for JSON from outside (an HTTP body, a form field): orjson reads an integer past
    64 bits as a rounded float, so a text that may hold one is read again by the standard
    library, which keeps it exact; the argument check then refuses it by name
    (`backburner.signature`) instead of a task running with another number."""
    value = loads(data)
    if isinstance(data, str):
        data = data.encode()  # orjson read it, so it holds no lone surrogate
    if _LONG_NUMBER.search(data) is None:
        return value
    try:
        # orjson accepted the text, so the standard library reads the same values from it.
        return json.loads(data)
    except RecursionError:
        raise PayloadError("nested too deeply to be read exactly") from None
