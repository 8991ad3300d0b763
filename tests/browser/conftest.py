"""The browser tier reuses the example app's test harness (uvicorn on a free loopback port,
an embedded worker, jobs in a real SQLite file) from tests/examples."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLES_TESTS = Path(__file__).resolve().parents[1] / "examples"
if str(EXAMPLES_TESTS) not in sys.path:
    sys.path.insert(0, str(EXAMPLES_TESTS))
