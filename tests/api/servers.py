"""A real uvicorn for the API tests that need real sockets (concurrent requests, fuzzing),
and the schemathesis CLI run against one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class SchemathesisReport:
    returncode: int
    output: str

    @property
    def summary(self) -> str:
        return self.output[self.output.rfind("SUMMARY"):]


CONFIG = Path(__file__).with_name("schemathesis.toml")


def run_schemathesis(schema_url: str, *, max_examples: int, extra: Sequence[str] = (),
                     timeout: float = 540) -> SchemathesisReport:
    """The schemathesis CLI, every check, every phase, deterministic data, over
    `schema_url`, with tests/api/schemathesis.toml."""
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file",
               str(CONFIG), "run", schema_url, "--checks", "all",
               "--phases", "examples,coverage,fuzzing,stateful", "--mode", "all",
               "--max-examples", str(max_examples), "--generation-deterministic",
               "--no-shrink", "--workers", "1", "--request-timeout", "30", *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          check=False, env={**os.environ, "NO_COLOR": "1"})
    return SchemathesisReport(done.returncode, done.stdout + done.stderr)
