"""A real uvicorn for the API tests that need real sockets (concurrent requests, fuzzing)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


@contextmanager
def serving(api: FastAPI) -> Iterator[str]:
    """A real uvicorn on 127.0.0.1, a free port, in a thread of its own (schemathesis' calls
    are synchronous); yields its base URL."""
    # Keep-alive longer than any pause between two examples: a connection the server drops
    # while the client reuses it would be a client error, not the router's.
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", ws="none", timeout_keep_alive=600))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during startup"
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
