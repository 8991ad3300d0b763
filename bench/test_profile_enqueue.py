"""Smoke test of bench/profile_enqueue.py: every store it can reach is profiled end to end with
tiny counts, and the report has each store's table. Nothing about speed is asserted. Run with
`pytest bench`."""

from __future__ import annotations

import socket

import pytest
from profile_enqueue import NAMES, main


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.timeout(120)
def test_every_reachable_store_is_profiled(capsys: pytest.CaptureFixture[str]) -> None:
    stores = ["memory", "sqlite"]
    stores += [name for name, port in (("redis", 6379), ("postgres", 5432)) if _listening(port)]
    text = main(["--calls", "20", "--rounds", "1", "--loops", "50", "--samples", "20",
                 "--stores", ",".join(stores)])
    assert text in capsys.readouterr().out
    for store in stores:
        assert f"### {NAMES[store]}" in text
    assert text.count("| **the whole enqueue (p50)** |") == len(stores)
    assert text.count("| store call: backend.insert([job]) |") == len(stores)
    assert text.count("| rest (difference) |") == len(stores)
    if "redis" in stores:
        assert "EVALSHA round trip, pipelined connection" in text
    if "postgres" in stores:
        assert "SELECT 1, held connection (the floor)" in text
