"""Smoke tests of `python bench/concurrent_enqueue.py`: its options, table and target lines, a
tiny run of Backburner on SQLite (no server), and a tiny run of Backburner on PostgreSQL beside
Procrastinate when Procrastinate's virtualenv already exists (nothing is installed from here;
PostgreSQL down: skipped, failing under CI=true). No timing is asserted. Run with
`.venv/bin/python -m pytest bench/test_concurrent.py`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import concurrent_enqueue as ce
import pytest
from peerbench import venvs
from peerbench.adapters.procrastinate import Procrastinate
from peerbench.stores import PG_DSN
from report import write_section


def test_options_pick_procrastinate_only_beside_postgres() -> None:
    assert [p.key for p in ce.parse_args([]).peers] == ["procrastinate"]
    assert ce.parse_args(["--stores", "sqlite,redis"]).peers == []
    assert ce.parse_args(["--peers", "none"]).peers == []
    assert [p.key for p in ce.parse_args(["--stores", "sqlite", "--peers",
                                          "procrastinate"]).peers] == ["procrastinate"]
    assert ce.parse_args(["--enqueuers", "100,1,10"]).enqueuers == [1, 10, 100]
    for wrong in (["--peers", "celery"], ["--stores", "mysql"], ["--enqueuers", "0"],
                  ["--jobs", "5", "--enqueuers", "1,10"]):
        with pytest.raises(SystemExit):
            ce.parse_args(wrong)


def _rows(ours: tuple[float, float], theirs: tuple[float, float]) -> list[ce.Row]:
    rows = []
    for key, label, rates in (("backburner-postgres", "Backburner", ours),
                              ("procrastinate", "Procrastinate", theirs)):
        series = [ce.Row(label, key, "postgres", c, rate=r)
                  for c, r in zip((1, 100), rates, strict=True)]
        for row in series:
            row.base = series[0].rate
        rows += series
    return rows


def test_table_and_targets() -> None:
    rows = _rows((1_000.0, 12_000.0), (800.0, 1_000.0))
    text = ce.table(rows)
    assert "| Backburner | postgres | 100 | 12,000 | 12.00x |" in text
    assert "| Procrastinate | postgres | 1 | 800 | 1.00x |" in text
    assert ce.targets(rows) == [
        "Backburner postgres at 100 vs its sequential rate: 12.0x (target ≥ 8x): met",
        "Backburner at 100 vs Procrastinate at 100: 12.0x (target ≥ 5x): met",
    ]
    short = ce.targets(_rows((1_000.0, 4_000.0), (800.0, 1_000.0)))
    assert short[0].endswith("4.0x (target ≥ 8x): NOT met")
    assert short[1].endswith("4.0x (target ≥ 5x): NOT met")
    failed = [*rows[:3], ce.Row("Procrastinate", "procrastinate", "postgres", 100,
                                note="failed: boom")]
    assert "| Procrastinate | postgres | 100 | failed: boom | — |" in ce.table(failed)
    assert len(ce.targets(failed)) == 1  # no peer figure, no peer target


def test_sqlite_run_and_section(tmp_path: Path) -> None:
    args = ce.parse_args(["--jobs", "40", "--enqueuers", "1,4", "--stores", "sqlite"])
    result = ce.run(args)
    assert [(r.key, r.enqueuers) for r in result.rows] == [("backburner-sqlite", 1),
                                                           ("backburner-sqlite", 4)]
    assert all(r.rate and r.rate > 0 for r in result.rows), [r.note for r in result.rows]
    body = ce.document("python bench/concurrent_enqueue.py --write",
                       ce.machine("0.10 0.20 0.30", "abc1234"), result, 40, 1.0)
    path = tmp_path / "RESULTS.md"
    write_section(path, ce.SECTION, body)
    text = path.read_text()
    assert "<!-- begin:concurrent -->" in text
    assert "Load average (1, 5, 15 min) before / after**: 0.10 0.20 0.30 / " in text
    assert "| Backburner | sqlite | 4 |" in text


def _postgres_up() -> bool:
    async def ping() -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def test_postgres_beside_procrastinate_when_its_venv_exists() -> None:
    try:
        venvs.environment(Procrastinate(), install=False)
    except venvs.InstallFailed as exc:
        pytest.skip(f"Procrastinate's virtualenv is not there: {exc}")
    if not _postgres_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_DSN} is required under CI")
        pytest.skip(f"PostgreSQL at {PG_DSN} is down")
    args = ce.parse_args(["--jobs", "40", "--enqueuers", "1,4", "--stores", "postgres",
                          "--no-install"])
    result = ce.run(args)
    assert [(r.key, r.enqueuers) for r in result.rows] == [
        ("backburner-postgres", 1), ("backburner-postgres", 4),
        ("procrastinate", 1), ("procrastinate", 4)]
    assert all(r.rate and r.rate > 0 for r in result.rows), [r.note for r in result.rows]
    assert "procrastinate" in result.versions["Procrastinate"]
