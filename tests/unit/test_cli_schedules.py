"""`backburner schedules list|pause|resume|trigger` against an app module with schedules."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backburner.cli import cli

runner = CliRunner()


@pytest.fixture
def app_path(tmp_path: Path) -> Iterator[str]:
    module = f"cli_sched_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(f"""
        from backburner import Backburner

        app = Backburner("sqlite:///{tmp_path}/jobs.db")

        @app.periodic(cron="0 9 * * 1-5", tz="Europe/Paris", name="weekday-report")
        @app.task
        async def report() -> None: ...
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        yield f"{module}:app"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


def test_list_pause_resume_trigger(app_path: str, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["migrate", "--app", app_path]).exit_code == 0
    listed = runner.invoke(cli, ["schedules", "list", "--app", app_path, "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.output)
    assert entry["name"] == "weekday-report" and not entry["paused"]
    assert entry["description"] == "At 09:00 on Monday through Friday (Europe/Paris)"
    assert len(entry["next_runs"]) == 3

    paused = runner.invoke(cli, ["schedules", "pause", "weekday-report", "--app", app_path])
    assert paused.exit_code == 0 and "paused" in paused.output
    text = runner.invoke(cli, ["schedules", "list", "--app", app_path])
    assert "[paused]" in text.output and "At 09:00 on Monday through Friday" in text.output
    # Pause state lives in the store: --url alone is enough to resume.
    url = f"sqlite:///{tmp_path}/jobs.db"
    resumed = runner.invoke(cli, ["schedules", "resume", "weekday-report", "--url", url])
    assert resumed.exit_code == 0 and "resumed" in resumed.output
    assert "[active]" in runner.invoke(cli, ["schedules", "list", "--app", app_path]).output

    triggered = runner.invoke(cli, ["schedules", "trigger", "weekday-report", "--app", app_path])
    assert triggered.exit_code == 0 and "triggered: job" in triggered.output
    jobs = runner.invoke(cli, ["jobs", "list", "--url", url, "--json"])
    assert len(json.loads(jobs.output)["jobs"]) == 1


def test_errors(app_path: str) -> None:
    unknown = runner.invoke(cli, ["schedules", "pause", "nope", "--app", app_path])
    assert unknown.exit_code == 1 and "no schedule named" in unknown.output
    no_app = runner.invoke(cli, ["schedules", "list"])
    assert no_app.exit_code == 2 and "--app" in no_app.output
