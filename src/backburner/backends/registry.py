"""Stores by URL scheme: the `backburner.stores` entry-point group.

Each entry point is named after a URL scheme and names a factory, `module:attr`, that takes
the URL and builds (without connecting) a `Backend`. Backburner declares its own stores there
(pyproject.toml); another package adds a store by declaring one in its own metadata:

    [project.entry-points."backburner.stores"]
    mystore = "mypackage.store:MyStoreBackend"

then `Backburner("mystore://...")` opens it. Nothing is imported until a URL of that scheme
is opened, so a store whose driver is not installed costs nothing to the others.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import cast
from urllib.parse import urlsplit

from backburner.backends.protocol import Backend
from backburner.errors import ConfigurationError

GROUP = "backburner.stores"
OWN_DISTRIBUTION = "backburner"

StoreFactory = Callable[[str], Backend]
"""What an entry point of the group names: the URL in, a store not yet opened out."""

BUILTIN_STORES: Mapping[str, str] = MappingProxyType(
    {
        "memory": "backburner.backends.memory:MemoryBackend",
        "sqlite": "backburner.backends.sqlite:SQLiteBackend",
        "redis": "backburner.backends.redis:RedisBackend",
        "rediss": "backburner.backends.redis:RedisBackend",
        "redis+sentinel": "backburner.backends.redis:RedisBackend",
        "postgresql": "backburner.backends.postgres:PostgresBackend",
        "postgres": "backburner.backends.postgres:PostgresBackend",
        "mysql": "backburner.backends.mysql:MySQLBackend [mysql]",
        "mariadb": "backburner.backends.mysql:MySQLBackend [mysql]",
    }
)
"""Our own stores, exactly as pyproject.toml declares them (a unit test keeps the two equal).
Used when the installed metadata declares none of ours: a source checkout on sys.path that was
never installed, or an install made before the group existed, still opens every store."""


@dataclass(frozen=True, slots=True)
class Driver:
    """What one of our stores needs beyond Backburner's own requirements."""

    store: str
    package: str
    extra: str


DRIVERS: Mapping[str, Driver] = MappingProxyType(
    {
        "backburner.backends.redis": Driver("the Redis backend", "redis-py", "redis"),
        "backburner.backends.postgres": Driver("the PostgreSQL backend", "asyncpg", "postgres"),
        "backburner.backends.mysql": Driver("the MySQL/MariaDB backend", "asyncmy", "mysql"),
    }
)
"""By the module an entry point names: what our stores say when their import fails. Other
stores are described by their entry point: `module:attr [extra]` names the extra to install."""


def _normalized(distribution: str) -> str:
    # PEP 503 normalisation, so "Backburner" and "back_burner"-style spellings compare equal.
    return re.sub(r"[-_.]+", "-", distribution).lower()


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """One scheme's store: the factory's reference and the distribution that declared it."""

    scheme: str
    target: str
    """The entry point's value, `module:attr` (optionally followed by `[extras]`)."""
    distribution: str

    @property
    def reference(self) -> EntryPoint:
        return EntryPoint(self.scheme, self.target, GROUP)

    def describe(self) -> str:
        return f"{self.target} from {self.distribution!r}"

    def load(self) -> StoreFactory:
        """Import the factory. A failed import is a missing driver, reported with what to
        install; a reference to nothing, or to something that cannot be called, is a broken
        declaration, named with the distribution to blame."""
        reference = self.reference
        try:
            found = reference.load()
        except ImportError as exc:
            raise ConfigurationError(self._missing_driver(exc)) from exc
        except AttributeError as exc:
            raise ConfigurationError(
                f"the store registered for {self.scheme}:// ({self.describe()}) names "
                f"nothing importable: {exc}"
            ) from exc
        if not callable(found):
            raise ConfigurationError(
                f"the store registered for {self.scheme}:// ({self.describe()}) is a "
                f"{type(found).__name__}, not a factory taking the URL"
            )
        return cast(StoreFactory, found)

    def _missing_driver(self, exc: ImportError) -> str:
        reference = self.reference
        driver = DRIVERS.get(reference.module)
        if driver is not None:
            return (
                f"{driver.store} needs {driver.package}: "
                f"pip install 'backburner[{driver.extra}]' ({exc})"
            )
        what = f"the store registered for {self.scheme}:// ({self.describe()})"
        if reference.extras:
            extras = ",".join(reference.extras)
            return f"{what} needs: pip install '{self.distribution}[{extras}]' ({exc})"
        return f"{what} cannot be imported ({exc}): is all {self.distribution!r} needs installed?"


@dataclass(frozen=True, slots=True)
class StoreRegistry:
    """Every store known, by scheme (lower case, as `urlsplit` gives it)."""

    entries: Mapping[str, StoreEntry]
    clashes: Mapping[str, tuple[StoreEntry, ...]]
    """Schemes two distributions declare with different factories: opening one is refused
    (naming both) rather than guessing which was meant; other schemes are not affected."""

    @classmethod
    def from_entry_points(cls, found: Iterable[EntryPoint]) -> StoreRegistry:
        own: list[StoreEntry] = []
        others: list[StoreEntry] = []
        for point in found:
            dist = getattr(point, "dist", None)
            name = dist.name if dist is not None and dist.name else "an unknown distribution"
            entry = StoreEntry(point.name.strip().lower(), point.value, name)
            (own if _normalized(name) == OWN_DISTRIBUTION else others).append(entry)
        if not own:
            own = [StoreEntry(s, t, OWN_DISTRIBUTION) for s, t in BUILTIN_STORES.items()]
        entries = {entry.scheme: entry for entry in own}
        clashes: dict[str, list[StoreEntry]] = {}
        for entry in others:
            held = entries.setdefault(entry.scheme, entry)
            if held.target != entry.target:
                clashes.setdefault(entry.scheme, [held]).append(entry)
        return cls(
            entries=MappingProxyType(entries),
            clashes=MappingProxyType({s: tuple(e) for s, e in clashes.items()}),
        )

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self.entries))

    def entry(self, scheme: str, url: str | None = None) -> StoreEntry:
        """The store of `scheme`, or a ConfigurationError listing the known schemes."""
        key = scheme.lower()
        if key in self.clashes:
            declared = "; ".join(e.describe() for e in self.clashes[key])
            raise ConfigurationError(
                f"backend scheme {key!r} is registered by more than one package ({declared}): "
                f"uninstall all but one"
            )
        found = self.entries.get(key)
        if found is None:
            where = f" in {url!r}" if url is not None else ""
            raise ConfigurationError(
                f"unknown backend scheme {key!r}{where}; known: {', '.join(self.schemes)}"
            )
        return found

    def open(self, url: str) -> Backend:
        """Build (but do not connect) the store `url` names."""
        entry = self.entry(urlsplit(url).scheme, url)
        backend = entry.load()(url)
        if not isinstance(backend, Backend):
            raise ConfigurationError(
                f"the store registered for {entry.scheme}:// ({entry.describe()}) built a "
                f"{type(backend).__name__}, which lacks methods of backburner's Backend"
            )
        return backend


@functools.cache
def installed_stores() -> StoreRegistry:
    """The stores the installed packages declare, read once per process (entry points are
    read from every distribution on sys.path). `installed_stores.cache_clear()` reads them
    again, after installing a store in a running process or in a test."""
    return StoreRegistry.from_entry_points(entry_points(group=GROUP))
