"""Entry module of the R14 worker processes: `python -m clock_skew <backburner CLI args>`.

Shifts this process's wall clock by RELIABILITY_CLOCK_SKEW seconds (`time.time` and
`time.time_ns`, which is what backburner reads: see test_r14_clock_skew's source scan), then
runs `python -m backburner` with the same arguments. It must run before backburner is
imported, so no module keeps the real clock. `time.monotonic` is left alone: a skewed wall
clock does not move it (one system-wide CLOCK_MONOTONIC on Linux), so the history's
monotonic stamps stay comparable across processes. `datetime.now()` reads the system clock
in C and cannot be shifted from Python; backburner does not use it where it matters.
"""

from __future__ import annotations

import os
import runpy
import sys
import time

SKEW_ENV = "RELIABILITY_CLOCK_SKEW"


def skew_wall_clock(seconds: float) -> None:
    real_time, real_time_ns = time.time, time.time_ns
    shift_ns = round(seconds * 1e9)
    time.time = lambda: real_time() + seconds
    time.time_ns = lambda: real_time_ns() + shift_ns


if __name__ == "__main__":
    assert "backburner" not in sys.modules, "the clock must be skewed before backburner loads"
    skew_wall_clock(float(os.environ[SKEW_ENV]))
    sys.argv[0] = "backburner"
    runpy.run_module("backburner", run_name="__main__", alter_sys=True)
