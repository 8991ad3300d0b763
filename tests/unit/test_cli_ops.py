"""The operator commands (info, healthcheck, purge, jobs list/retry/cancel/delete by filter)
through typer's runner, against a real SQLite file and the server backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import SERVER_BACKENDS, backend_url, destroy_store
from typer.testing import CliRunner

from backburner import Backburner
from backburner.backends.protocol import WorkerInfo
from backburner.cli import cli
from backburner.cli_ops import parse_when

runner = CliRunner()


@pytest.fixture(params=["sqlite", *SERVER_BACKENDS])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    found = backend_url(request.param, tmp_path)
    yield found
    destroy_store(found)


def seed(url: str) -> dict[str, Any]:
    """Two failed charges, a completed one, a scheduled and a pending job (no worker left)."""

    async def go() -> dict[str, Any]:
        async with Backburner(url) as app:

            @app.task(name="charge", retries=0)
            async def charge(customer: str) -> str:
                if customer.startswith("bad"):
                    raise ValueError(f"card of {customer} declined")
                return "ok"

            failed = [(await charge.enqueue(c)).id for c in ("bad-ada", "bad-bob")]
            done = (await charge.enqueue("carol")).id
            await app.run_worker(burst=True)
            later = (await charge.options(delay=600).enqueue("dan")).id
            pending = (await charge.enqueue("erin")).id
            return {"failed": failed, "done": done, "later": later, "pending": pending}

    return asyncio.run(go())


def run(*args: str, input: str | None = None) -> Any:
    return runner.invoke(cli, list(args), input=input)


def listed(url: str, *args: str) -> list[str]:
    result = run("jobs", "list", "--url", url, "--json", *args)
    assert result.exit_code == 0, result.output
    return [j["id"] for j in json.loads(result.stdout)["jobs"]]


def test_list_filters_and_bulk_actions(url: str) -> None:
    ids = seed(url)
    assert set(listed(url, "--search", "DECLINED")) == set(ids["failed"])
    assert listed(url, "--search", "erin") == [ids["pending"]]
    assert len(listed(url, "--since", "1h")) == 5
    assert listed(url, "--until", "1h") == []
    assert listed(url, "--state", "failed", "--search", "carol") == []

    # Without --yes: the count first, then a confirmation (refused: nothing happens).
    refused = run("jobs", "retry", "--all", "--task", "charge", "--url", url, input="n\n")
    assert refused.exit_code == 1 and "2 job(s) match" in refused.output
    assert set(listed(url, "--state", "failed")) == set(ids["failed"])
    retried = run("jobs", "retry", "--all", "--search", "bad-", "--url", url, input="y\n")
    assert retried.exit_code == 0 and "retried 2 of 2" in retried.output, retried.output
    assert listed(url, "--state", "failed") == []

    cancelled = run("jobs", "cancel", "--all", "--state", "scheduled", "--yes", "--json",
                    "--url", url)
    assert json.loads(cancelled.stdout) == {"action": "cancel", "matched": 1, "changed": 1,
                                            "skipped": 0}
    assert run("jobs", "delete", ids["later"], "--url", url).exit_code == 0
    assert run("jobs", "delete", ids["later"], "--url", url).exit_code == 1
    # stdout: a Redis without persistence adds a warning on stderr.
    assert run("jobs", "delete", "--all", "--state", "pending", "--yes",
               "--url", url).stdout.startswith("deleted 0 of 0")

    kept = run("purge", "--older-than", "1d", "--yes", "--url", url)
    assert kept.exit_code == 0 and "deleted 0 of 0" in kept.output
    purged = run("purge", "--older-than", "0s", "--yes", "--url", url)
    assert purged.exit_code == 0 and "deleted 1 of 1" in purged.output  # the completed one
    assert ids["done"] not in listed(url)
    assert run("purge", "--older-than", "1d", "--state", "running",
               "--url", url).exit_code == 2


def test_usage_errors_name_the_problem(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    neither = run("jobs", "retry", "--url", db)
    assert neither.exit_code == 2 and "--all" in neither.output
    both = run("jobs", "cancel", "some-id", "--all", "--url", db)
    assert both.exit_code == 2 and "not both" in both.output
    bad_time = run("jobs", "list", "--since", "yesterday-ish", "--url", db)
    assert bad_time.exit_code == 2 and "--since" in bad_time.output
    bad_age = run("purge", "--older-than", "soon", "--url", db)
    assert bad_age.exit_code == 2
    assert parse_when("2026-01-01T00:00:00", "x") == parse_when("1767225600", "x")
    assert parse_when("2h", "x", now=10_000.0) == 10_000.0 - 7200


def test_info_shows_every_queue(url: str) -> None:
    seed(url)
    table = run("info", "--url", url)
    assert table.exit_code == 0, table.output
    assert "default" in table.output and "pending" in table.output
    rows = json.loads(run("info", "--json", "--url", url).stdout)
    assert rows == [{"queue": "default", "pending": 1, "scheduled": 1, "running": 0,
                     "completed": 1, "failed": 2, "cancelled": 0, "workers": 0}]


def test_healthcheck_exit_codes(url: str) -> None:
    seed(url)
    no_worker = run("healthcheck", "--url", url)
    assert no_worker.exit_code == 1 and "no live worker" in no_worker.output

    async def register() -> None:
        async with Backburner(url) as app:
            await app.backend.register_worker(
                WorkerInfo(id="probe-w1", hostname="h", pid=1, queues=("default",),
                           concurrency=1))

    asyncio.run(register())
    healthy = run("healthcheck", "--url", url)
    assert healthy.exit_code == 0 and "healthy" in healthy.output
    assert run("healthcheck", "--max-backlog", "1", "--max-age", "3600",
               "--url", url).exit_code == 0
    backlog = run("healthcheck", "--max-backlog", "0", "--url", url)
    assert backlog.exit_code == 1 and "backlog 1 pending jobs > 0" in backlog.output
    old = run("healthcheck", "--max-age", "0", "--url", url)
    assert old.exit_code == 1 and "has waited" in old.output
    other = run("healthcheck", "--queue", "emails", "--url", url)
    assert other.exit_code == 1 and "serving queue 'emails'" in other.output


def test_healthcheck_of_an_unreachable_store() -> None:
    down = run("healthcheck", "--timeout", "5", "--url", "redis://127.0.0.1:1/0")
    assert down.exit_code == 1
    assert down.stderr.startswith("unhealthy: ") and len(down.stderr.splitlines()) == 1
