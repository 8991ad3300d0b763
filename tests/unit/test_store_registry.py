"""The store registry (`backburner.stores` entry points): a third-party store declared by a
real distribution on sys.path opens by URL; our own stores are what pyproject.toml declares,
from installed metadata or, without it, the built-in table; the errors say what to do."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import services

from backburner import Backburner
from backburner.backends import open_backend, registry
from backburner.backends.memory import MemoryBackend
from backburner.backends.mysql import MySQLBackend
from backburner.backends.postgres import PostgresBackend
from backburner.backends.redis import RedisBackend
from backburner.backends.registry import (
    BUILTIN_STORES,
    GROUP,
    StoreRegistry,
    installed_stores,
)
from backburner.backends.sqlite import SQLiteBackend
from backburner.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]

THIRD_PARTY_MODULE = '''
from backburner.backends.memory import MemoryBackend
from backburner.backends.mysql import MySQLBackend


class ThirdStore(MemoryBackend):
    """A store of another package: the in-process one under a scheme of its own."""

    def __init__(self, url: str) -> None:
        super().__init__(url)


class NotAStore:
    def __init__(self, url: str) -> None:
        self.url = url


NOT_CALLABLE = 42
'''

ENTRY_POINTS = f"""
[{GROUP}]
third = thirdstore:ThirdStore
third-plus = thirdstore:ThirdStore
needy = thirdstore_needy:Store [fast]
bare = thirdstore_needy:Store
nothing = thirdstore:Missing
notastore = thirdstore:NotAStore
notcallable = thirdstore:NOT_CALLABLE
redis = thirdstore:ThirdStore
"""


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution `thirdstore` (a dist-info directory on sys.path, as pip
    leaves one) declaring stores, and the registry read again with it and without it."""
    site = tmp_path / "site"
    (site / "thirdstore-1.0.dist-info").mkdir(parents=True)
    (site / "thirdstore-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdstore\nVersion: 1.0\n"
    )
    (site / "thirdstore-1.0.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "thirdstore.py").write_text(THIRD_PARTY_MODULE)
    (site / "thirdstore_needy.py").write_text("import thirdstore_driver_not_installed\n")
    monkeypatch.syspath_prepend(str(site))
    installed_stores.cache_clear()
    yield site
    installed_stores.cache_clear()
    for name in [m for m in sys.modules if m.startswith("thirdstore")]:
        del sys.modules[name]


async def test_a_third_party_store_opens_by_url(third_party: Path) -> None:
    backend = open_backend("third://anything")
    assert type(backend).__name__ == "ThirdStore" and backend.url == "third://anything"
    assert isinstance(open_backend("THIRD-PLUS://x"), MemoryBackend)  # schemes: any case
    app = Backburner("third://x")
    await app.open()
    try:
        assert type(app.backend).__name__ == "ThirdStore"
    finally:
        await app.close()
    # Ours are all still there beside it.
    assert isinstance(open_backend("sqlite:///jobs.db"), SQLiteBackend)
    assert installed_stores().entry("third").distribution == "thirdstore"


def test_unknown_scheme_lists_the_known_ones(third_party: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown backend scheme 'nope'") as caught:
        open_backend("nope://x")
    known = str(caught.value).split("known: ")[1].split(", ")
    assert set(known) == {*BUILTIN_STORES, "third", "third-plus", "needy", "bare", "nothing",
                          "notastore", "notcallable"}


def test_a_third_party_missing_driver_names_the_package_to_install(third_party: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_backend("needy://x")
    message = str(caught.value)
    assert "thirdstore_driver_not_installed" in message
    assert "pip install 'thirdstore[fast]'" in message
    with pytest.raises(ConfigurationError, match=r"cannot be imported .*'thirdstore' needs"):
        open_backend("bare://x")


@pytest.mark.parametrize(
    ("scheme", "message"),
    [
        ("nothing", "names nothing importable"),
        ("notcallable", "is a int, not a factory"),
        ("notastore", "built a NotAStore, which lacks methods"),
    ],
)
def test_a_broken_declaration_is_refused_naming_its_package(
    third_party: Path, scheme: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        open_backend(f"{scheme}://x")
    assert "from 'thirdstore'" in str(caught.value)


def test_a_scheme_two_packages_claim_is_refused_the_others_still_open(
    third_party: Path,
) -> None:
    with pytest.raises(ConfigurationError, match="more than one package") as caught:
        open_backend("redis://127.0.0.1:6379/0")
    assert "backburner.backends.redis:RedisBackend" in str(caught.value)
    assert "thirdstore:ThirdStore" in str(caught.value)
    assert isinstance(open_backend("rediss://127.0.0.1:6379/0"), RedisBackend)


def test_tests_refuse_a_registered_store_they_cannot_reach(third_party: Path) -> None:
    # services.py derives the kinds from the registry: a store with no URL maker there fails
    # the run loudly rather than going untested.
    with pytest.raises(pytest.UsageError, match=r"thirdstore:ThirdStore .* URL maker"):
        services.store_kinds()


@pytest.mark.parametrize(
    ("scheme", "driver", "store", "package", "extra"),
    [
        ("redis", "redis", RedisBackend, "redis-py", "redis"),
        ("postgresql", "asyncpg", PostgresBackend, "asyncpg", "postgres"),
        ("mariadb", "asyncmy", MySQLBackend, "asyncmy", "mysql"),
    ],
)
def test_our_missing_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    driver: str,
    store: type,
    package: str,
    extra: str,
) -> None:
    # As if the driver were not installed: importing it fails, and the store's package is
    # imported afresh (monkeypatch puts the modules already imported back afterwards).
    ours = store.__module__.rsplit(".", 1)[0]
    for name in [m for m in sys.modules if m == ours or m.startswith(f"{ours}.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, driver, None)
    with pytest.raises(ConfigurationError, match=f"needs {package}: ") as caught:
        open_backend(f"{scheme}://127.0.0.1/x")
    assert f"pip install 'backburner[{extra}]'" in str(caught.value)


def pyproject_stores() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        table: dict[str, str] = tomllib.load(file)["project"]["entry-points"][GROUP]
    return table


def test_the_builtin_table_is_what_pyproject_declares() -> None:
    assert dict(BUILTIN_STORES) == pyproject_stores()


def test_the_installed_metadata_is_what_pyproject_declares() -> None:
    ours = {
        point.name: point.value
        for point in importlib.metadata.entry_points(group=GROUP)
        if point.dist is not None and point.dist.name == "backburner"
    }
    # None at all: an install older than the group, which the built-in table stands in for.
    assert not ours or ours == pyproject_stores(), (
        "the installed metadata is stale: run bash scripts/setup.sh"
    )


def test_without_installed_metadata_the_builtin_table_opens_every_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A source checkout on sys.path, never installed: no entry points at all.
    monkeypatch.setattr(registry, "entry_points", lambda group: ())
    installed_stores.cache_clear()
    try:
        assert installed_stores().schemes == tuple(sorted(BUILTIN_STORES))
        assert isinstance(open_backend("memory://"), MemoryBackend)
        assert isinstance(open_backend("postgres://h/db"), PostgresBackend)
        assert installed_stores().entry("sqlite").distribution == "backburner"
    finally:
        installed_stores.cache_clear()


def test_other_packages_add_to_the_builtin_table() -> None:
    extra = importlib.metadata.EntryPoint("third", "thirdstore:ThirdStore", GROUP)
    stores = StoreRegistry.from_entry_points([extra])
    assert set(stores.schemes) == {*BUILTIN_STORES, "third"}
    assert stores.entry("third").target == "thirdstore:ThirdStore"
    assert not stores.clashes

