"""pytest plugin: the `backburner` fixture runs your app on a fresh in-memory store for one
test. Loaded by pytest itself (a `pytest11` entry point) in every run where Backburner is
installed, so it imports nothing and changes nothing until a test asks for a fixture.

Tell it which app, in pyproject.toml:

    [tool.pytest.ini_options]
    backburner_app = "myproject.jobs:app"      # module:attribute, or a factory to call

or by overriding the `backburner_app` fixture in a conftest.py (an app built per test, by a
factory of yours). Then:

    async def test_signup(backburner):
        await signup("a@example.com")
        backburner.assert_enqueued(send_welcome, "a@example.com")
        await backburner.drain()          # runs it, retries and delays included
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from backburner.app import Backburner
    from backburner.testing import JobsHarness, ManualClock

_INI = "backburner_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        "module:attribute of the Backburner app that the `backburner` fixture runs on an "
        "in-memory store (a factory is called)",
        default="",
    )


@pytest.fixture
def backburner_app(request: pytest.FixtureRequest) -> Backburner:
    """The app the `backburner` fixture switches to memory: the ini option `backburner_app`
    names it. Override this fixture to give it another way."""
    spec = str(request.config.getini(_INI)).strip()
    if not spec:
        pytest.fail(
            "the `backburner` fixture needs your app: set backburner_app = "
            "\"package.module:app\" under [tool.pytest.ini_options], or override the "
            "`backburner_app` fixture in a conftest.py",
            pytrace=False,
        )
    from backburner.errors import ConfigurationError
    from backburner.loading import load_app

    try:
        return load_app(spec)
    except ConfigurationError as exc:
        pytest.fail(f"backburner_app = {spec!r}: {exc}", pytrace=False)


@pytest.fixture
def backburner_clock() -> ManualClock:
    """The clock of the test's store: moved by `drain`, or by you (`advance(seconds)`)."""
    from backburner.testing import ManualClock

    return ManualClock()


@pytest.fixture
def backburner(backburner_app: Any, backburner_clock: ManualClock) -> Iterator[JobsHarness]:
    """`backburner_app` on a fresh in-memory store for this test, back on its own after."""
    from backburner.app import Backburner
    from backburner.testing import memory_store

    if not isinstance(backburner_app, Backburner):
        pytest.fail(
            f"the backburner_app fixture gave {type(backburner_app).__name__}, not a Backburner",
            pytrace=False,
        )
    with memory_store(backburner_app, backburner_clock) as harness:
        yield harness
