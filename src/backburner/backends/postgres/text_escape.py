"""The escape that lets PostgreSQL keep error text holding NUL characters.

The `errors` column is `jsonb`, and jsonb (like every PostgreSQL text type) cannot hold
U+0000, which an exception's message or traceback may well contain. Rather than lose it,
the PostgreSQL backend stores each error's `type`, `message` and `traceback` escaped, and
unescapes them when it reads a job:

- U+FFFF (a noncharacter, never meant to appear in interchanged text) is the escape mark;
- a NUL is stored as U+FFFF followed by "0", a U+FFFF as two U+FFFF.

Text without either character, nearly all of it, is stored as it is. The other JSON the
backend stores (arguments, results, progress) lives in `text` columns as JSON text, where
a NUL is the escape sequence `\\u0000` that JSON already has, so it needs nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MARK = "\uffff"
_ESCAPED = re.compile(MARK + "(.)", re.DOTALL)


def escape(text: str) -> str:
    if "\x00" not in text and MARK not in text:
        return text
    return text.replace(MARK, MARK + MARK).replace("\x00", MARK + "0")


def unescape(text: str) -> str:
    if MARK not in text:
        return text
    # A mark followed by anything else (a row not written by Backburner) is left as it is.
    return _ESCAPED.sub(lambda m: "\x00" if m[1] == "0" else MARK if m[1] == MARK else m[0],
                        text)


_TEXT_FIELDS = ("type", "message", "traceback")


def escape_error(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stored error entry (see `records.error_entry`) ready for jsonb."""
    return {k: escape(v) if k in _TEXT_FIELDS and isinstance(v, str) else v
            for k, v in entry.items()}


def unescape_errors(errors: Any) -> Any:
    """The stored error entries as they were given (anything not a list of objects: as is)."""
    if not isinstance(errors, list):
        return errors
    return [
        {k: unescape(v) if k in _TEXT_FIELDS and isinstance(v, str) else v
         for k, v in e.items()} if isinstance(e, dict) else e
        for e in errors
    ]
