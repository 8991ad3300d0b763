"""The results table (Markdown) and the machine description that goes with it."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import sqlite3
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common import BENCH_DIR


@dataclass(frozen=True)
class Row:
    metric: str
    unit: str  # "jobs/s" (higher is better) or "ms" (lower is better)
    backburner: float
    huey: float | None = None
    target: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "jobs/s"

    def meets(self) -> bool | None:
        if self.target is None or math.isnan(self.backburner):
            return None
        if self.higher_is_better:
            return self.backburner >= self.target
        return self.backburner <= self.target


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.0f}" if unit == "jobs/s" else f"{value:.2f}"


def _target(row: Row) -> str:
    if row.target is None:
        return "—"
    sign = "≥" if row.higher_is_better else "≤"
    return f"{sign} {_number(row.target, row.unit)}"


def _ratio(row: Row) -> str:
    if row.huey is None or row.huey == 0 or math.isnan(row.backburner):
        return "—"
    return f"{row.backburner / row.huey:.2f}x"


def table(rows: Sequence[Row]) -> str:
    verdicts = {True: "yes", False: "**no**", None: "—"}
    lines = [
        "| Metric | Unit | Backburner | Huey | Backburner/Huey | Target | Meets target |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.metric} | {row.unit} | {_number(row.backburner, row.unit)} "
            f"| {_number(row.huey, row.unit)} | {_ratio(row)} | {_target(row)} "
            f"| {verdicts[row.meets()]} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, str]:
    import backburner

    try:
        import huey  # type: ignore[import-untyped]

        huey_version = huey.__version__
    except ImportError:
        huey_version = "not installed"

    return {
        "Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Commit": commit(),
        "CPU": f"{cpu_model()}, {os.cpu_count()} cores",
        "Memory": memory(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "Backburner": backburner.__version__,
        "Huey": huey_version,
        "Temp dir (databases)": tempfile.gettempdir(),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=BENCH_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _dirty() -> bool:
    return bool(_git("status", "--porcelain", "--", "src"))


def commit() -> str:
    """The commit measured; "(dirty)" when src/ has uncommitted changes."""
    return _git("rev-parse", "--short", "HEAD") + (" (dirty)" if _dirty() else "")


RESULTS_TITLE = "# Backburner benchmark results"
SQLITE_SECTION = "sqlite"
SQLITE_TITLE = "## SQLite: Backburner and Huey (`python bench/run.py --write`)"


def document(command: str, settings: dict[str, str], rows: Sequence[Row],
             notes: Sequence[str]) -> str:
    """The SQLite section of RESULTS.md (see `write_section`)."""
    parts = [
        SQLITE_TITLE,
        "",
        f"Command: `{command}`",
        "",
        *(f"- **{k}**: {v}" for k, v in machine().items()),
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        "",
        table(rows),
        "",
        "Notes:",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    return "\n".join(parts)


# -- RESULTS.md: one file, one section per command ---------------------------------------------
def _markers(name: str) -> tuple[str, str]:
    return f"<!-- begin:{name} -->", f"<!-- end:{name} -->"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace section `name` of the results file (or append it), leaving the sections other
    commands wrote untouched: `run.py --write` and `run.py --peers --write` share one file."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else f"{RESULTS_TITLE}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = f"{head}{block}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    path.write_text(text)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages as text ("?" where the system has none)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
