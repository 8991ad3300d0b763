from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backburner import Backburner, JobState, __version__
from backburner.backends.sqlite.schema import MIGRATIONS
from backburner.cli import cli
from backburner.context import JobContext

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def seed(url: str) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with Backburner(url) as app:

            @app.task(retries=0)
            async def boom() -> None:
                raise RuntimeError("kaput")

            @app.task
            async def ok(n: int) -> int:
                return n

            failed = await boom.enqueue()
            done = await ok.enqueue(1)
            await app.run_worker(burst=True)
            waiting = await ok.options(delay=600).enqueue(2)
            return {"failed": failed.id, "done": done.id, "waiting": waiting.id}

    return asyncio.run(go())


def test_version() -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"backburner {__version__}"


def test_jobs_list_show_retry_cancel(db: str) -> None:
    ids = seed(db)
    listed = runner.invoke(cli, ["jobs", "list", "--url", db, "--json"])
    assert listed.exit_code == 0, listed.output
    states = {j["id"]: j["state"] for j in json.loads(listed.output)["jobs"]}
    assert states == {ids["failed"]: "failed", ids["done"]: "completed",
                      ids["waiting"]: "scheduled"}

    only_failed = runner.invoke(cli, ["jobs", "list", "--json", "--state", "failed"],
                                env={"BACKBURNER_URL": db})
    assert [j["id"] for j in json.loads(only_failed.output)["jobs"]] == [ids["failed"]]

    shown = runner.invoke(cli, ["jobs", "show", ids["failed"], "--url", db])
    detail = json.loads(shown.output)
    assert detail["errors"][0]["message"] == "kaput"
    assert detail["reason"] == "error"

    assert runner.invoke(cli, ["jobs", "retry", ids["failed"], "--url", db]).exit_code == 0
    refused = runner.invoke(cli, ["jobs", "retry", ids["done"], "--url", db])
    assert refused.exit_code == 1
    assert "only failed or cancelled" in refused.output

    cancelled = runner.invoke(cli, ["jobs", "cancel", ids["waiting"], "--url", db])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output

    async def state(job_id: str) -> JobState:
        async with Backburner(db) as app:
            record = await app.get_job(job_id)
            assert record is not None
            return record.state

    assert asyncio.run(state(ids["failed"])) is JobState.PENDING
    assert asyncio.run(state(ids["waiting"])) is JobState.CANCELLED


def test_jobs_show_has_the_links_of_a_chain(db: str) -> None:
    async def go() -> list[str]:
        async with Backburner(db) as app:

            @app.task
            async def ok(n: int) -> int:
                return n

            chain = await app.chain(ok.call(1), ok.pipe())
            return [j.id for j in chain.jobs]

    first, second = asyncio.run(go())
    shown = json.loads(runner.invoke(cli, ["jobs", "show", second, "--url", db]).output)
    assert shown["flow_id"] == first and shown["depends_on"] == [first]
    assert shown["waiting_on"] == 1 and shown["dependents"] == []


def test_errors_are_reported_not_raised(db: str) -> None:
    assert runner.invoke(cli, ["migrate", "--url", db]).exit_code == 0
    missing = runner.invoke(cli, ["jobs", "show", "nope", "--url", db])
    assert missing.exit_code == 1 and "no job" in missing.output
    no_target = runner.invoke(cli, ["jobs", "list"], env={"BACKBURNER_URL": None})
    assert no_target.exit_code == 2 and "--app" in no_target.output
    bad_state = runner.invoke(cli, ["jobs", "list", "--url", db, "--state", "weird"])
    assert bad_state.exit_code == 2
    bad_app = runner.invoke(cli, ["worker", "no_such_module:app"])
    assert bad_app.exit_code == 2 and "cannot import" in bad_app.output
    bad_url = runner.invoke(cli, ["migrate", "--url", "bogus://x"])
    assert bad_url.exit_code == 2 and "unknown backend scheme" in bad_url.output


def test_migrate_creates_the_schema(db: str) -> None:
    first = runner.invoke(cli, ["migrate", "--url", db])
    versions = [v for v, _, _ in MIGRATIONS]
    assert first.exit_code == 0 and f"applied migrations: {versions}" in first.output
    again = runner.invoke(cli, ["migrate", "--url", db])
    assert "up to date" in again.output


def test_json_logs_carry_the_transition_fields() -> None:
    import logging

    from backburner.logs import JSONFormatter

    record = logging.LogRecord("backburner.jobs", logging.INFO, __file__, 1, "job %s", ("x",),
                               None)
    record.backburner = {"job_id": "x", "state": "completed", "attempt": 1}
    line = json.loads(JSONFormatter().format(record))
    assert line["job_id"] == "x" and line["state"] == "completed" and line["message"] == "job x"


def test_times_are_iso_8601_as_in_the_http_api_and_percentages_rounded(db: str) -> None:
    from backburner.fastapi.schemas import JobOut

    async def go() -> tuple[str, str, JobOut]:
        async with Backburner(db) as app:

            @app.task(retries=0)
            async def boom() -> None:
                raise RuntimeError("kaput")

            @app.task
            async def third(ctx: JobContext) -> None:
                await ctx.progress(1, 3)

            failed = await boom.enqueue()
            partial = await third.enqueue()
            await app.run_worker(burst=True)
            record = await app.get_job(failed.id)
            assert record is not None
            return failed.id, partial.id, JobOut.of(record)

    failed, partial, http = asyncio.run(go())
    shown = json.loads(runner.invoke(cli, ["jobs", "show", failed, "--url", db]).stdout)
    served = http.model_dump(mode="json")
    assert shown["errors"][0]["at"] == served["errors"][0]["at"]
    for name in ("created_at", "updated_at", "run_at", "started_at", "finished_at"):
        assert shown[name] == served[name], name
        assert datetime.fromisoformat(shown[name]).tzinfo is not None

    listed = json.loads(runner.invoke(cli, ["jobs", "list", "--json", "--url", db]).stdout)
    by_id = {j["id"]: j for j in listed["jobs"]}
    assert by_id[failed]["created_at"] == served["created_at"]
    assert by_id[partial]["progress"] == 33.33
    assert json.loads(runner.invoke(cli, ["jobs", "show", partial, "--url", db]).stdout)[
        "progress"]["percent"] == 33.33
    table = runner.invoke(cli, ["jobs", "list", "--url", db])
    assert "33.33%" in table.stdout and served["created_at"][:19] in table.stdout


def test_info_headers_whole_at_80_columns(db: str) -> None:
    seed(db)
    table = runner.invoke(cli, ["info", "--url", db], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    header = next(line for line in table.stdout.splitlines() if line.startswith("queue"))
    assert header.split() == ["queue", "pending", "scheduled", "running", "completed",
                              "failed", "cancelled", "workers"]
    assert "…" not in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
