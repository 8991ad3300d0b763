"""Commands that look at a store, or change jobs already in it, refuse a store that does not
exist (a mistyped URL) with a clear message and a non-zero exit, and leave it uncreated;
only `migrate` and `worker` create one. Against a real SQLite file, PostgreSQL schema and
Redis prefix."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import SERVER_BACKENDS, backend_url, destroy_store
from typer.testing import CliRunner

from backburner.backends import open_backend
from backburner.cli import cli
from backburner.errors import StoreNotFoundError

runner = CliRunner()

LOOKING = [
    ["jobs", "list"], ["jobs", "list", "--json"], ["jobs", "show", "some-id"],
    ["jobs", "retry", "some-id"], ["jobs", "cancel", "--all", "--yes"],
    ["jobs", "delete", "--all", "--state", "failed", "--yes"],
    ["purge", "--older-than", "1d", "--yes"], ["info"], ["info", "--json"],
    ["queues", "list"], ["queues", "pause", "mail"], ["queues", "resume", "mail"],
    ["schedules", "pause", "nightly"], ["schedules", "resume", "nightly"],
]


def exists(url: str) -> bool:
    async def go() -> bool:
        backend = open_backend(url)
        try:
            await backend.open(create=False)
        except StoreNotFoundError:
            return False
        finally:
            await backend.close()
        return True

    return asyncio.run(go())


@pytest.fixture(params=["sqlite", *SERVER_BACKENDS])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    found = backend_url(request.param, tmp_path)
    yield found
    destroy_store(found)


def test_commands_refuse_a_missing_store_and_do_not_create_it(url: str) -> None:
    for command in LOOKING:
        result = runner.invoke(cli, [*command, "--url", url])
        assert result.exit_code == 2, (command, result.output)
        assert "backburner migrate" in result.stderr, (command, result.output)
        assert "Traceback" not in result.output
    unhealthy = runner.invoke(cli, ["healthcheck", "--url", url])
    assert unhealthy.exit_code == 1 and "backburner migrate" in unhealthy.stderr
    dashboard = runner.invoke(cli, ["dashboard", url, "--port", "1"])
    assert dashboard.exit_code == 2 and "backburner migrate" in dashboard.stderr
    assert not exists(url)

    assert runner.invoke(cli, ["migrate", "--url", url]).exit_code == 0
    assert exists(url)
    listed = runner.invoke(cli, ["jobs", "list", "--json", "--url", url])
    assert listed.exit_code == 0 and '"jobs": []' in listed.stdout


def test_sqlite_file_without_backburner_tables(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    refused = runner.invoke(cli, ["jobs", "list", "--url", f"sqlite:///{empty}"])
    assert refused.exit_code == 2 and "has no Backburner tables" in refused.stderr
    assert empty.stat().st_size == 0 and not (tmp_path / "empty.db-wal").exists()

    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    refused = runner.invoke(cli, ["info", "--url", f"sqlite:///{text}"])
    assert refused.exit_code == 2 and "is not a SQLite database" in refused.stderr
    assert text.read_text() == "not a database\n"


def test_schedules_list_and_trigger_need_the_apps_store(tmp_path: Path) -> None:
    module = f"cli_missing_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        "from backburner import Backburner\n"
        f"app = Backburner('sqlite:///{tmp_path}/jobs.db')\n"
        "@app.periodic(every=60, name='tick')\n"
        "@app.task\n"
        "async def tick() -> None: ...\n")
    sys.path.insert(0, str(tmp_path))
    try:
        for command in (["schedules", "list"], ["schedules", "trigger", "tick"]):
            refused = runner.invoke(cli, [*command, "--app", f"{module}:app"])
            assert refused.exit_code == 2 and "backburner migrate" in refused.stderr
        assert not (tmp_path / "jobs.db").exists()
        # A worker creates its store.
        worker = runner.invoke(cli, ["worker", f"{module}:app", "--burst", "--no-uvloop"])
        assert worker.exit_code == 0, worker.output
        assert runner.invoke(cli, ["schedules", "list", "--app", f"{module}:app"]).exit_code == 0
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)
