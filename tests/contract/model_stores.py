"""A store opened on an event loop of its own, for the hypothesis model tests: hypothesis
runs each example synchronously, and each example runs its steps on this loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services import BACKENDS, backend_url

from backburner.backends import open_backend
from backburner.backends.protocol import Backend

MODEL_CHECKED = [kind for kind in BACKENDS if kind != "memory"]
"""The stores held to the memory store, which applies the rules as written."""


@contextmanager
def store_on_loop(kind: str, tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Backend]]:
    loop = asyncio.new_event_loop()
    store = open_backend(backend_url(kind, tmp_path))
    loop.run_until_complete(store.open())
    try:
        yield loop, store
    finally:
        destroy = getattr(store, "destroy", None)
        if destroy is not None:
            loop.run_until_complete(destroy())
        loop.run_until_complete(store.close())
        loop.close()
