"""The testing kit: BACKBURNER_URL, `memory_store` / `JobsHarness` (assertions, drain on a
manual clock) and the pytest plugin's fixtures, run in a pytest of their own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backburner import Backburner, ConfigurationError, JobContext
from backburner.app import DEFAULT_URL, resolve_url
from backburner.backends.memory import MemoryBackend
from backburner.testing import ManualClock, drain, memory_store


def test_the_url_given_wins_then_backburner_url_then_the_default() -> None:
    env = {"BACKBURNER_URL": "memory://"}
    assert resolve_url("sqlite:///given.db", env) == "sqlite:///given.db"
    assert resolve_url(None, env) == "memory://"
    assert resolve_url(None, {}) == DEFAULT_URL == "sqlite:///backburner.db"


def test_backburner_url_is_read_by_an_app_made_without_a_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BACKBURNER_URL", "memory://")
    assert isinstance(Backburner().backend, MemoryBackend)
    given = Backburner(f"sqlite:///{tmp_path}/given.db")
    assert given.url == f"sqlite:///{tmp_path}/given.db"


@pytest.mark.parametrize("value", ["", "  ", "nonsense", "foo://x", "sqlite://"])
def test_a_bad_backburner_url_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BACKBURNER_URL", value)
    with pytest.raises(ConfigurationError, match="BACKBURNER_URL"):
        Backburner()


def _app(tmp_path: Path) -> tuple[Backburner, list[int]]:
    app = Backburner(f"sqlite:///{tmp_path}/production.db")
    calls: list[int] = []

    @app.task(name="kit.flaky", retries=2, backoff=30)
    async def flaky(n: int, ctx: JobContext, *, label: str = "") -> int:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return n

    return app, calls


async def test_memory_store_runs_an_app_on_memory_and_gives_it_back(tmp_path: Path) -> None:
    app, calls = _app(tmp_path)
    flaky = app.get_task("kit.flaky")
    own = app.backend
    with memory_store(app) as jobs:
        assert isinstance(app.backend, MemoryBackend) and app.url == "memory://"
        await flaky.enqueue(1, label="x")
        await flaky.options(delay=3600).enqueue(2)
        jobs.assert_enqueued(flaky, 1, label="x")
        jobs.assert_enqueued(flaky, n=1, label="x")  # the same call, as stored
        jobs.assert_not_enqueued(flaky, 3)
        # Due now only: the first attempt fails, its retry (30 s backoff) and the delayed
        # job stay scheduled, as on every store.
        assert await jobs.drain(run_scheduled=False) == 1
        assert {j.state.value for j in jobs.jobs(flaky)} == {"scheduled"}
        before = jobs.clock.now
        assert await jobs.drain() == 5  # the clock moves; nothing sleeps
        assert [j.state.value for j in jobs.jobs(flaky)] == ["completed", "completed"]
        assert jobs.clock.now - before >= 3600 and sorted(calls) == [1, 1, 2, 2, 3, 3]
    assert app.backend is own and app.url == f"sqlite:///{tmp_path}/production.db"
    assert not (tmp_path / "production.db").exists()  # the real store was never opened


async def test_assertion_failures_list_what_was_enqueued(tmp_path: Path) -> None:
    app, _ = _app(tmp_path)
    flaky = app.get_task("kit.flaky")
    with memory_store(app) as jobs:
        with pytest.raises(AssertionError, match=r"no job of kit\.flaky was enqueued; the "
                           r"store holds no job"):
            jobs.assert_enqueued(flaky)
        await flaky.enqueue(1)
        with pytest.raises(AssertionError) as failure:
            jobs.assert_enqueued(flaky, 2, label="y")
        assert str(failure.value) == (
            "no job of kit.flaky(2, label='y') was enqueued; the store holds 1:\n"
            "  kit.flaky(n=1) pending"
        )
        with pytest.raises(AssertionError, match=r"expected no job of kit.flaky, found 1:\n"
                           r"  kit.flaky\(n=1\) pending"):
            jobs.assert_not_enqueued(flaky)


async def test_run_scheduled_on_the_real_clock_says_what_to_use() -> None:
    app = Backburner("memory://")
    with pytest.raises(ConfigurationError, match=r"ManualClock.*memory_store"):
        await drain(app, run_scheduled=True)


def test_drain_sync_runs_jobs_in_a_sync_test(tmp_path: Path) -> None:
    app, calls = _app(tmp_path)
    with memory_store(app, ManualClock(1_000_000.0)) as jobs:
        asyncio.run(app.get_task("kit.flaky").enqueue(5))
        assert jobs.drain_sync() == 3 and calls == [1, 2, 3]
        assert jobs.clock.now > 1_000_000.0


PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        backburner_app = "shop.jobs:app"
        asyncio_mode = "auto"
        asyncio_default_fixture_loop_scope = "function"
        filterwarnings = ["error"]
    """,
    "shop/__init__.py": "",
    "shop/jobs.py": """
        from backburner import Backburner
        app = Backburner("sqlite:///production-never-opened.db")

        @app.task(retries=1, backoff=60)
        async def send_welcome(email: str) -> str:
            if email.startswith("bounce"):
                raise RuntimeError("bounced")
            return email
    """,
    "test_shop.py": """
        import sys
        from shop.jobs import app, send_welcome

        async def test_enqueue_and_drain(backburner):
            assert backburner.app is app and app.url == "memory://"
            await send_welcome.enqueue("a@example.com")
            await send_welcome.enqueue("bounce@example.com")
            backburner.assert_enqueued(send_welcome, "a@example.com")
            assert await backburner.drain() == 3
            assert [j.state.value for j in backburner.jobs()] == ["completed", "failed"]

        def test_each_test_gets_a_fresh_store(backburner):
            assert backburner.jobs() == []

        def test_back_on_its_own_store_outside_the_fixture():
            assert app.url == "sqlite:///production-never-opened.db"
    """,
    "other/test_unasked.py": """
        import os
        import sys

        def test_nothing_is_imported_or_set_unless_asked():
            assert "shop.jobs" not in sys.modules and "BACKBURNER_URL" not in os.environ
    """,
    "other/test_needs_the_app.py": """
        def test_without_the_ini_option(backburner):
            pass
    """,
}


def _project(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _pytest(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
         *args],
        cwd=root, capture_output=True, text=True, timeout=120, check=False, env=env,
    )


@pytest.mark.timeout(240)
def test_the_pytest_plugin_in_a_project_of_its_own(tmp_path: Path) -> None:
    _project(tmp_path, PROJECT)
    run = _pytest(tmp_path, "test_shop.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout, run.stdout
    assert not (tmp_path / "production-never-opened.db").exists()
    # Without the ini option the fixture says how to give the app (no traceback), and a
    # test that asks for no fixture finds nothing imported or set.
    # (Only this plugin loaded this time: pytest starts faster.)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    env = {k: v for k, v in os.environ.items() if k != "BACKBURNER_URL"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    run = _pytest(tmp_path, "-p", "backburner.pytest_plugin", "other", env=env)
    assert run.returncode == 1 and "1 passed, 1 error" in run.stdout, run.stdout
    assert 'set backburner_app = "package.module:app"' in run.stdout, run.stdout


async def test_an_app_already_open_on_its_store_is_given_back_open(tmp_path: Path) -> None:
    app, _ = _app(tmp_path)
    flaky = app.get_task("kit.flaky")
    async with app:
        before = await flaky.enqueue(1)
        with memory_store(app) as jobs:
            await flaky.enqueue(2)
            assert [j.kwargs for j in jobs.jobs()] == [{"n": 2}]
            assert await app.get_job(before.id) is None  # not on the test's store
        # Back on the SQLite file, still open: its job is there, the memory one is not.
        assert (await app.get_job(before.id)) is not None
        assert await app.count_jobs() == 1
