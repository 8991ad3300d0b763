"""Running Debian's `wrk` and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# wrk sends GET unless a Lua script says otherwise; every endpoint here is a POST.
POST_SCRIPT = 'wrk.method = "POST"\n'
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


class WrkError(Exception):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    output: str


def available() -> str | None:
    return shutil.which("wrk")


def run(url: str, duration: float, connections: int, threads: int,
        timeout_s: float = 10.0) -> WrkResult:
    """`wrk -t<threads> -c<connections> -d<duration>s --latency` with POST requests."""
    binary = available()
    if binary is None:
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bb-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(POST_SCRIPT)
        command = [binary, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s",
                   f"--timeout={timeout_s:g}s", "--latency", "-s", str(script), url]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=duration + timeout_s + 30)
        except subprocess.TimeoutExpired:
            raise WrkError(f"wrk did not finish within {duration + timeout_s + 30:.0f} s") from None
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return parse(done.stdout)


def parse(output: str) -> WrkResult:
    """The figures of a `wrk --latency` report (WrkError if one is missing)."""
    rate = _search(r"^Requests/sec:\s+([\d.]+)", output)
    requests = _search(r"^\s*(\d+) requests in ", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    if p50 is None or p99 is None:
        raise WrkError(f"no latency distribution in wrk's output: {output[-300:]!r}")
    non_2xx = re.search(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", output, re.M)
    sockets = re.search(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), "
                        r"timeout (\d+)", output, re.M)
    return WrkResult(
        requests_per_second=float(rate),
        requests=int(requests),
        p50_ms=float(p50.group(1)) * _UNITS[p50.group(2)],
        p99_ms=float(p99.group(1)) * _UNITS[p99.group(2)],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(x) for x in sockets.groups()) if sockets else 0,
        output=output,
    )


def _search(pattern: str, output: str) -> str:
    found = re.search(pattern, output, re.M)
    if found is None:
        raise WrkError(f"unexpected wrk output (no match for {pattern!r}): {output[-300:]!r}")
    return found.group(1)
