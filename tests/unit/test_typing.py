"""Runs mypy (strict) on tests/typing and checks that exactly the lines marked `# E: code`
are errors, with that code: tests/typing/*.py with the backburner plugin, and
tests/typing/without_plugin/*.py without it (what a project that never enabled it sees)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

TYPING = Path(__file__).parent.parent / "typing"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("folder", "plugins"),
    [(TYPING, "plugins = backburner.mypy\n"), (TYPING / "without_plugin", "")],
    ids=["plugin", "without-plugin"],
)
def test_task_signatures_are_checked_by_mypy(
    tmp_path: Path, folder: Path, plugins: str
) -> None:
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nstrict = True\n{plugins}")
    files = sorted(folder.glob("*.py"))
    assert files
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config),
         "--cache-dir", str(tmp_path / "cache"), *map(str, files)],
        capture_output=True, text=True, check=False,
    )
    found = set()
    for line in run.stdout.splitlines():
        match = re.match(r"(.+?):(\d+): error: .*\[([\w-]+)\]$", line)
        if match:
            found.add((Path(match.group(1)).name, int(match.group(2)), match.group(3)))
    expected = set()
    for file in files:
        for number, text in enumerate(file.read_text().splitlines(), 1):
            # `# E: a|b`: either code (mypy releases name some errors differently: the
            # lowest supported one calls a keyword-only argument given by position `misc`).
            marker = re.search(r"# E: ([\w|-]+)", text)
            if marker:
                codes = marker.group(1).split("|")
                seen = [c for c in codes if (file.name, number, c) in found]
                expected.add((file.name, number, seen[0] if seen else codes[0]))
    assert found == expected, run.stdout
