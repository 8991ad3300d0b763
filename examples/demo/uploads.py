"""Receiving a (large) CSV upload straight to disk (S15, R24).

Starlette's `UploadFile` parses the whole body before the endpoint runs, so a size limit
there comes too late. Here the multipart body is parsed as it arrives: the file part is
written chunk by chunk to a file whose name the server chooses (a random hex id: nothing of
the client's file name reaches the file system), and the upload is cut off with 413 as soon
as it passes the limit. Memory use does not depend on the file's size.

Only CSV text is kept: a file part whose name does not end in `.csv`, whose declared type is
neither CSV nor text (nor the generic types browsers and curl send for `.csv`), or whose
content is not UTF-8 text is refused with 415 and the reason, and nothing of it stays on
disk. The content is checked as it streams, so a binary file is stopped at its first chunk.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

STORED_NAME = re.compile(r"^[0-9a-f]{32}\.csv$")
_MULTIPART_OVERHEAD = 64 * 1024
"""Room for boundaries and part headers on top of the file itself."""


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    stored_name: str
    """The server-chosen name, `<32 hex>.csv`."""
    filename: str
    """The client's name, cleaned, for display only."""
    size: int


CSV_TYPES = frozenset({
    "text/csv", "application/csv", "text/x-csv", "application/x-csv",
    "text/comma-separated-values", "text/plain",
    # What browsers on Windows (Excel installed) and curl (no type for .csv) declare:
    "application/vnd.ms-excel", "application/octet-stream",
})
"""Declared types a CSV file arrives with; anything else (image/png, application/pdf...)
is not one. No declared type at all is text/plain (RFC 7578)."""
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters no CSV text holds (tab, line feed and carriage return are fine)."""


def _last_component(raw: str) -> str:
    last = re.split(r"[\\/]", raw)[-1]
    return "".join(c for c in last if unicodedata.category(c)[0] != "C").strip()


def display_name(raw: str) -> str:
    """The client's file name reduced to something safe to show: the last path component,
    no control characters, at most 255 characters."""
    return _last_component(raw)[:255] or "upload.csv"


class UnsupportedUpload(Exception):
    """The file part is not CSV text; the message says why (the 415's reason)."""


def check_declared(filename: str, content_type: bytes) -> None:
    """The part's own claims: a `.csv` name (when it has one) and a CSV or text type in
    UTF-8. Raises `UnsupportedUpload`."""
    name = _last_component(filename)
    if name and not name.lower().endswith(".csv"):
        raise UnsupportedUpload(f"{display_name(filename)!r} is not a .csv file")
    declared, options = parse_options_header(content_type or b"text/plain")
    kind = declared.decode("latin-1").lower()
    if kind not in CSV_TYPES:
        raise UnsupportedUpload(f"the file is declared as {kind or 'nothing'}, not CSV text")
    charset = options.get(b"charset", b"utf-8").decode("latin-1").lower()
    if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise UnsupportedUpload(f"the file is declared in {charset}; send it in UTF-8")


class TextSniffer:
    """Checks content, chunk by chunk, for UTF-8 text without binary control characters."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._offset = 0

    def feed(self, data: bytes, final: bool = False) -> None:
        held = len(self._decoder.getstate()[0])  # a sequence cut by the previous chunk
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            at = self._offset - held + exc.start
            raise UnsupportedUpload(f"the file is not UTF-8 text (byte {at})") from None
        found = _NOT_TEXT.search(text)
        if found is not None:
            raise UnsupportedUpload(f"the file is not CSV text (control character "
                                    f"{found.group()!r})")
        self._offset += len(data)


class _Receiver:
    """Callbacks for the streaming parser: collects part headers, writes the `file` part."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.in_file = False
        self.pending: list[bytes] = []
        self.size = 0
        self.filename: str | None = None
        self.done = False
        self.sniffer = TextSniffer()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._append("header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._append("header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _append(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _part_begin(self) -> None:
        self.headers = {}

    def _header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        # Only the first part named "file" is the upload; anything else is ignored.
        self.in_file = options.get(b"name") == b"file" and self.filename is None and not self.done
        if self.in_file:
            raw = options.get(b"filename", b"")
            self.filename = raw.decode("utf-8", "replace")
            check_declared(self.filename, self.headers.get(b"content-type", b""))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.size += end - start
            if self.size > self.limit:
                raise _TooLarge
            self.sniffer.feed(data[start:end])
            self.pending.append(data[start:end])

    def _part_end(self) -> None:
        if self.in_file:
            self.sniffer.feed(b"", final=True)  # a multi-byte character cut off at the end
            self.in_file = False
            self.done = True


class _TooLarge(Exception):
    pass


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the upload is larger than the limit of {limit} bytes")


async def receive_csv(request: Request, directory: Path, limit: int) -> StoredUpload:
    """Stream the request's multipart `file` field into `directory`. 413 past `limit`
    bytes, 415 for a body that is not multipart/form-data or a file that is not CSV text
    (see `check_declared`, `TextSniffer`), 400 for a broken body, 422 when there is no
    `file` field."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise HTTPException(415, "send the CSV as multipart/form-data with a `file` field")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise _too_large(limit)  # refused before reading a byte of it

    receiver = _Receiver(limit)
    parser = MultipartParser(options[b"boundary"], cast(Any, receiver.callbacks()))
    stored_name = f"{uuid.uuid4().hex}.csv"
    path = directory / stored_name
    received = 0
    try:
        with path.open("xb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit + _MULTIPART_OVERHEAD:
                    raise _TooLarge
                parser.write(chunk)
                if receiver.pending:
                    data = b"".join(receiver.pending)
                    receiver.pending.clear()
                    # A thread for the write: a slow disk must not stall the event loop.
                    await asyncio.to_thread(out.write, data)
            parser.finalize()
    except _TooLarge:
        path.unlink(missing_ok=True)
        raise _too_large(limit) from None
    except UnsupportedUpload as exc:
        path.unlink(missing_ok=True)
        raise HTTPException(415, f"not a CSV file: {exc}") from None
    except MultipartParseError as exc:
        path.unlink(missing_ok=True)
        raise HTTPException(400, f"malformed multipart body: {exc}") from None
    except BaseException:
        path.unlink(missing_ok=True)  # a client that went away leaves no half file behind
        raise
    if receiver.filename is None:
        path.unlink(missing_ok=True)
        raise HTTPException(422, "no `file` field in the form")
    return StoredUpload(path, stored_name, display_name(receiver.filename), receiver.size)
