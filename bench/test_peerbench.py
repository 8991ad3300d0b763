"""Smoke tests of the peers benchmark (`python bench/run.py --peers`): its bookkeeping, and one
tiny end-to-end run of Backburner on SQLite (no virtualenv to build, no server needed; a few
seconds). A peer runs too when its virtualenv already exists and Redis is up; nothing is
installed from here. No timing is asserted. Run with `pytest bench`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from peerbench import cli, venvs
from peerbench.adapter import Environment, Mode, WorkerPlan
from peerbench.adapters import all_systems
from peerbench.adapters.backburner import Backburner
from peerbench.adapters.huey import Huey
from peerbench.procs import ScenarioFailed
from peerbench.report import Metric, best, results_table
from peerbench.scenarios import Cell, Runner, Settings, SystemResult
from peerbench.stores import REDIS_URL, make_store
from report import write_section

PEERS_DIR = Path(__file__).resolve().parent / "peers"
TINY = ["--jobs", "500", "--sleep-jobs", "20", "--samples", "5", "--no-install"]


def _result(key: str, **values: float) -> SystemResult:
    peer = next(p for p in all_systems() if p.key == key)
    result = SystemResult(peer)
    for metric, value in values.items():
        result.cells[metric] = Cell(value)
    return result


def test_best_peer_is_never_backburner_and_respects_direction() -> None:
    results = [_result("backburner-sqlite", drain1=9_000.0, p50=0.5),
               _result("rq", drain1=200.0, p50=4.0), _result("huey", drain1=1_500.0, p50=2.0)]
    table, footnotes = results_table(results, Settings(jobs=10, sleep_jobs=10, samples=5))
    peers = [r for r in results if not r.peer.is_backburner]
    assert best(peers, Metric("drain1", "Drain", "jobs/s")) is results[2]
    assert best(peers, Metric("p50", "p50", "ms")) is results[2]
    row = next(line for line in table.splitlines() if "Backburner (sqlite)" in line)
    assert "9,000 (6.00x)" in row  # jobs/s: higher is better
    assert "0.50 (4.00x)" in row  # ms: lower is better, still shown as "times better"
    assert "| **1,500** (1.00x) |" in next(line for line in table.splitlines() if "Huey" in line)
    # Cells never measured get one footnote per system and reason, not one per column.
    assert sum("not run" in note for note in footnotes) == len(results)


def test_write_section_keeps_the_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_section(path, "sqlite", "## SQLite\nold")
    write_section(path, "peers", "## Peers\nfirst")
    write_section(path, "peers", "## Peers\nsecond")
    text = path.read_text()
    assert "## SQLite\nold" in text
    assert "second" in text
    assert "first" not in text
    assert text.count("<!-- begin:peers -->") == 1


def test_jobstats_counts_jobs_per_process(tmp_path: Path) -> None:
    code = "import jobstats\nfor _ in range(7): jobstats.noop()\n"
    env = {**os.environ, "PYTHONPATH": str(PEERS_DIR), "BENCH_STATS_DIR": str(tmp_path),
           "BENCH_BARRIER": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    from peers import jobstats

    (stats,) = jobstats.read_all(tmp_path)
    assert stats.count == 7
    assert stats.last_finish >= stats.registered_at > 0


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], only: str) -> dict[str, object]:
    cli.main(["--only", only, *TINY, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| System | Store |" in out
    report: dict[str, object] = json.loads((tmp_path / "peers-latest.json").read_text())
    return report


def _cells(report: dict[str, object]) -> dict[str, dict[str, object]]:
    (system,) = report["systems"]  # type: ignore[misc]
    cells: dict[str, dict[str, object]] = system["cells"]
    return cells


def test_backburner_sqlite_end_to_end(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cells = _cells(_run(tmp_path, capsys, "backburner-sqlite"))
    for metric in ("enqueue", "bulk", "drain1", "drain2", "p50", "p99", "sleep", "rss"):
        value = cells[metric]["value"]
        assert isinstance(value, float), (metric, cells[metric])
        assert value > 0, (metric, cells[metric])


def test_a_peer_end_to_end_when_its_venv_exists(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    peer = Huey()
    try:
        venvs.environment(peer, install=False)
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (venvs.InstallFailed, redis.RedisError) as exc:
        pytest.skip(f"Huey's virtualenv or Redis is not there: {exc}")
    cells = _cells(_run(tmp_path, capsys, peer.key))
    for metric in ("enqueue", "bulk", "drain1", "drain2", "p50", "sleep", "rss"):
        assert cells[metric]["value"], (metric, cells[metric])


class _Stuck(Backburner):
    """A "library" whose worker never takes a job, ignores SIGTERM, and forks a child that
    does the same (what a hung supervisor looks like)."""

    def __init__(self, marker: str) -> None:
        super().__init__("sqlite")
        self.marker = marker

    def worker(self, env: Environment, mode: Mode, processes: int) -> WorkerPlan:
        code = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                f"os.fork(); time.sleep(600)  # {self.marker}")
        return WorkerPlan(((sys.executable, "-c", code),), 1)


def test_a_stuck_worker_is_killed_and_reported(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Settings, "timeout", lambda self, jobs: 2.0)
    marker = f"stuck-{uuid.uuid4()}"
    peer = _Stuck(marker)
    store = make_store("sqlite")
    try:
        runner = Runner(peer, venvs.environment(peer), store,
                        Settings(jobs=500, sleep_jobs=10, samples=5), tmp_path)
        runner._reset()
        runner._client("fill", "--jobs", "500")
        with pytest.raises(ScenarioFailed, match="timed out after 2 s: 0 of 500"):
            runner._run_drain("drain", 1, 500)
    finally:
        store.close()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit()
            and marker.encode() in _cmdline(p)]
    assert left == []


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
