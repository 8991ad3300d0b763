"""`backburner queues list|pause|resume` against a real SQLite file, by URL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from backburner import Backburner, JobState
from backburner.cli import cli

runner = CliRunner()


def test_list_pause_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    assert runner.invoke(cli, ["migrate", "--url", url]).exit_code == 0
    assert runner.invoke(cli, ["queues", "list", "--url", url]).output.strip() == "no queues"

    async def enqueue() -> None:
        async with Backburner(url) as app:
            @app.task(queue="mail")
            async def send() -> None: ...

            await send.enqueue()

    asyncio.run(enqueue())
    paused = runner.invoke(cli, ["queues", "pause", "mail", "--url", url])
    assert paused.exit_code == 0 and paused.output.strip() == "mail paused"
    text = runner.invoke(cli, ["queues", "list", "--url", url])
    assert text.output.strip() == "mail  [paused]  pending=1"
    listed = json.loads(runner.invoke(cli, ["queues", "list", "--url", url, "--json"]).output)
    [mail] = listed
    assert mail["name"] == "mail" and mail["paused"] is True and mail["total"] == 1
    assert mail["counts"][JobState.PENDING.value] == 1 and mail["changed_at"]

    resumed = runner.invoke(cli, ["queues", "resume", "mail", "--url", url])
    assert resumed.exit_code == 0 and resumed.output.strip() == "mail resumed"
    listed = json.loads(runner.invoke(cli, ["queues", "list", "--url", url, "--json"]).output)
    assert listed[0]["paused"] is False


def test_bad_name_and_no_store_are_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    assert runner.invoke(cli, ["migrate", "--url", url]).exit_code == 0
    bad = runner.invoke(cli, ["queues", "pause", "x" * 201, "--url", url])
    assert bad.exit_code == 2 and "queue name" in bad.output
    missing = runner.invoke(cli, ["queues", "list"], env={"BACKBURNER_URL": "",
                                                          "BACKBURNER_APP": ""})
    assert missing.exit_code == 2 and "--url" in missing.output
