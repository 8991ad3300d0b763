"""Receiving a (large) CSV upload straight to disk (S15, R24).

Starlette's `UploadFile` parses the whole body before the endpoint runs, so a size limit
there comes too late. Here the multipart body is parsed as it arrives: the file part is
written chunk by chunk to a file whose name the server chooses (a random hex id: nothing of
the client's file name reaches the file system), and the upload is cut off with 413 as soon
as it passes the limit. Memory use does not depend on the file's size.
"""

from __future__ import annotations

import asyncio
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


def display_name(raw: str) -> str:
    """The client's file name reduced to something safe to show: the last path component,
    no control characters, at most 255 characters."""
    last = re.split(r"[\\/]", raw)[-1]
    cleaned = "".join(c for c in last if unicodedata.category(c)[0] != "C").strip()
    return cleaned[:255] or "upload.csv"


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

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.size += end - start
            if self.size > self.limit:
                raise _TooLarge
            self.pending.append(data[start:end])

    def _part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.done = True


class _TooLarge(Exception):
    pass


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the upload is larger than the limit of {limit} bytes")


async def receive_csv(request: Request, directory: Path, limit: int) -> StoredUpload:
    """Stream the request's multipart `file` field into `directory`. 413 past `limit`
    bytes, 415 for a body that is not multipart/form-data, 400 for a broken one, 422 when
    there is no `file` field."""
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
