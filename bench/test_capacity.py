"""Smoke test of the capacity measurement: it runs end to end on SQLite (and on private Redis
and PostgreSQL servers where their binaries are installed) and its model renders every
section. Nothing about speed is asserted. Run with `pytest bench`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from capacity import BATCH, measure_all
from capacity_model import render
from capacity_servers import PG_BIN


def _stores() -> list[str]:
    stores = ["sqlite"]
    if shutil.which("redis-server"):
        stores.append("redis")
    if (Path(PG_BIN) / "initdb").exists():
        stores.append("postgres")
    return stores


@pytest.mark.timeout(300)
def test_every_store_is_measured_and_modelled() -> None:
    stores = _stores()
    phases = asyncio.run(measure_all(BATCH, stores))
    assert len(phases) == 4 * len(stores)
    assert all(p.jobs == BATCH and p.seconds > 0 for p in phases)
    text = render(phases, {"Date": "today"}, 2)
    for section in ("## Measured", "## Model", "## Worker hosts", "## What was checked"):
        assert section in text
    assert text.count("| SQLite, enqueue") == 2
