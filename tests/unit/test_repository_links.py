"""The repository is all a user gets: every relative link in the README and docs/ names a file
of the clone, and nothing the user reads points outside it (a link to `../something` worked
only on the machine it was written on)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Markdown links `[text](target)`; the target ends at a space, `)` or `#`.
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
# What a user reads or runs: the docs, the package, the examples, the scripts.
USER_FACING = ("README.md", "docs", "src", "examples", "scripts", "bench", "pyproject.toml")


def _user_files() -> list[Path]:
    files: list[Path] = []
    for name in USER_FACING:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file() and p.suffix in {
                ".md", ".py", ".sh", ".toml", ".html", ".js", ".txt", ".sql", ".lua"}
                and ".venv" not in p.parts and "out" not in p.parts)
    return files


def test_relative_links_name_files_of_the_clone() -> None:
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_nothing_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared\b|\bshared/(?:SCENARIOS|RELIABILITY|STYLE)\.md")
    hits = [f"{path.relative_to(ROOT)}:{n}" for path in _user_files()
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace")
                                     .splitlines(), 1) if outside.search(line)]
    assert hits == []
