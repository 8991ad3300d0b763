"""Every command's --help at 80 columns: each option and argument is described, environment
variable names appear whole, nothing is cut off with an ellipsis, no line is wider than the
terminal, and flags show no `<bool>` placeholder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperOption
from typer.testing import CliRunner

from backburner.cli import cli

runner = CliRunner()


def commands() -> Iterator[tuple[list[str], Any]]:
    """(path, command) of the CLI and of every group and command under it."""

    def walk(path: list[str], command: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk([*path, name], sub)

    yield from walk([], typer.main.get_command(cli))


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in commands()}
    assert {"worker", "migrate", "jobs list", "jobs show", "info", "healthcheck", "dashboard",
            "queues list", "schedules list", "purge"} <= names


def test_help_at_80_columns_documents_every_option_readably() -> None:
    for path, command in commands():
        result = runner.invoke(cli, [*path, "--help"], env={"COLUMNS": "80"},
                               terminal_width=80)
        where = " ".join(["backburner", *path])
        assert result.exit_code == 0, (where, result.output)
        text = result.output
        assert "…" not in text and "<bool>" not in text, (where, text)
        # click shortens a command's summary that does not fit with "...": words cut off.
        cut = re.findall(r"\w\.\.\.$", text, re.MULTILINE)
        assert not cut, (where, text)
        too_wide = [line for line in text.splitlines() if len(line) > 80]
        assert not too_wide, (where, too_wide)
        for param in command.params:
            label = param.opts[0] if isinstance(param, TyperOption) else param.name
            assert getattr(param, "help", None), f"{where}: {label} has no help text"
            envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            for name in filter(None, envvars):
                assert name in text, f"{where}: {name} of {label} is not shown whole"
