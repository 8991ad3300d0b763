"""The escape of error text on PostgreSQL (postgres/text_escape.py): lossless, and text
without NUL or the mark is stored as it is."""

from __future__ import annotations

import pytest

from backburner.backends.postgres.text_escape import (
    MARK,
    escape,
    escape_error,
    unescape,
    unescape_errors,
)

SAMPLES = ["", "plain", "\x00", "a\x00b", MARK, MARK + "0", "\x00" + MARK + "\x00",
           MARK * 3 + "0", "\\u0000", "end" + MARK, "é\x00ü" + MARK + "x"]


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip(text: str) -> None:
    stored = escape(text)
    assert "\x00" not in stored
    assert unescape(stored) == text


def test_text_without_nul_or_mark_is_untouched() -> None:
    assert escape("ValueError: x") == "ValueError: x"
    assert unescape("ValueError: x") == "ValueError: x"


def test_a_stray_mark_from_elsewhere_is_left_as_is() -> None:
    assert unescape("a" + MARK + "z") == "a" + MARK + "z"


def test_error_entries() -> None:
    entry = {"attempt": 1, "type": "E\x00", "message": "m\x00", "traceback": None,
             "reason": "error", "at": 1.0}
    stored = escape_error(entry)
    assert "\x00" not in str(stored)
    assert unescape_errors([stored]) == [entry]
    assert unescape_errors("not a list") == "not a list"
