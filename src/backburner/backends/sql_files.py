"""Named queries kept in .sql files next to each SQL backend."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    text = resources.files(package).joinpath(filename).read_text()
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} defined twice in {package}/{filename}")
        queries[name] = body.strip()
    return queries


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every `NNNN_name.sql` in the package's migrations folder."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    # Numbers are reserved per feature, so a gap may be filled by a later release: the
    # migrators apply every version missing from their ledger, whatever its place.
    if len(set(versions)) != len(versions) or any(v < 1 for v in versions):
        raise ValueError(f"migrations of {package} must have distinct numbers >= 1: {versions}")
    return found
