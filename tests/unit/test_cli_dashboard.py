"""`backburner dashboard URL`: refuses to listen beyond loopback without users, parses
`--user NAME:PASSWORD:ROLE`, and serves the dashboard over a real SQLite store (a real
process on a free loopback port)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from services import free_port
from typer.testing import CliRunner

from backburner import Backburner
from backburner.cli import cli
from backburner.cli_dashboard import build, is_loopback, parse_users
from backburner.errors import ConfigurationError

BIN = Path(sys.executable).parent


def test_refuses_other_hosts_without_auth(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    for host in ("0.0.0.0", "192.0.2.7", "example.com", "::"):
        result = CliRunner().invoke(cli, ["dashboard", url, "--host", host])
        assert result.exit_code == 2, result.output
        assert "without authentication" in result.output and "--user" in result.output
    bad = CliRunner().invoke(cli, ["dashboard", url, "--user", "ann:pw:root"])
    assert bad.exit_code == 2 and "NAME:PASSWORD:ROLE" in bad.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


def test_users_parse() -> None:
    assert parse_users(["ann:pa:ss:admin,rob:x:read"]) == {
        "ann": ("pa:ss", "admin"), "rob": ("x", "read")}
    for bad in (["ann"], ["ann:pw"], [":pw:admin"], ["ann::admin"], ["ann:pw:owner"]):
        with pytest.raises(ConfigurationError):
            parse_users(bad)
    with pytest.raises(ConfigurationError, match="store URL"):
        build(None, None, {})


async def test_standalone_app_with_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Backburner(url) as jobs:
        @jobs.task(name="t")
        async def t() -> None: ...

        await t.enqueue()
    api = build(url, None, {"ann": ("pw", "admin"), "rob": ("ro", "read")})
    transport = httpx2.ASGITransport(app=api)
    async with api.router.lifespan_context(api), httpx2.AsyncClient(
            transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/")).status_code == 401
        page = await http.get("/jobs", auth=("rob", "ro"))
        assert page.status_code == 200 and ">t<" in page.text and "read-only" in page.text
        assert (await http.get("/docs")).status_code == 404


async def test_standalone_app_from_module_shows_its_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "bb_dashboard_standalone_app.py").write_text(
        "from backburner import Backburner\n"
        f"jobs = Backburner('sqlite:///{tmp_path}/jobs.db')\n"
        "@jobs.task(name='mail.send')\n"
        "async def send(to: str) -> None: ...\n")
    monkeypatch.chdir(tmp_path)
    api = build(None, "bb_dashboard_standalone_app:jobs", {})
    transport = httpx2.ASGITransport(app=api)
    async with api.router.lifespan_context(api), httpx2.AsyncClient(
            transport=transport, base_url="http://testserver") as http:
        form = await http.get("/enqueue/mail.send")
        assert form.status_code == 200 and 'name="to"' in form.text


def test_the_command_serves_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BACKBURNER_URL": f"sqlite:///{tmp_path}/jobs.db"}
    assert CliRunner().invoke(cli, ["migrate"], env=env).exit_code == 0
    proc = subprocess.Popen([str(BIN / "backburner"), "dashboard", "--port", str(port),
                             "--prefix", "/ui"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    page = http.get("/ui/")
                    break
                except httpx2.TransportError:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                    assert time.monotonic() < deadline, "the dashboard did not start"
                    time.sleep(0.1)
            assert page.status_code == 200 and "Overview" in page.text
            assert "unsafe-inline" not in page.headers["content-security-policy"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"http://localhost:{port}/ui" in out.decode()
