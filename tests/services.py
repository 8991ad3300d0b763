"""The stores tests run on, and per-test isolated URLs on them.

The kinds come from the store registry (`backburner.stores` entry points, see
backburner/backends/registry.py): each registered store is one kind, and TEST_URLS says how a
test gets an isolated URL on it; a registered store without one fails the run.

Redis: BACKBURNER_TEST_REDIS_URL (default redis://127.0.0.1:6379/15), or with
BACKBURNER_TEST_REDIS_CLUSTER=1 a private 6-node Redis Cluster the run starts on first use
and stops at exit (tests/redis_cluster.py; scripts/test.sh runs tests/contract so); PostgreSQL:
BACKBURNER_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test); MySQL or
MariaDB: BACKBURNER_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306, each test on a
database bbt_<token> of its own). A server that is down fails the run under CI=true and
skips (loudly) elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from backburner.backends.registry import installed_stores

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("BACKBURNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "BACKBURNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("BACKBURNER_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")
_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "mysql": 3306, "mariadb": 3306}


def _only(known: tuple[str, ...]) -> frozenset[str] | None:
    """BACKBURNER_TEST_BACKENDS=memory,sqlite restricts every backend-parametrised test to
    those backends (scripts/test.sh's run on the lowest supported versions uses it)."""
    raw = os.environ.get("BACKBURNER_TEST_BACKENDS", "").strip()
    if not raw:
        return None
    kinds = frozenset(k.strip() for k in raw.split(",") if k.strip())
    unknown = sorted(kinds - set(known))
    if unknown:
        raise pytest.UsageError(
            f"BACKBURNER_TEST_BACKENDS: unknown backend(s) {unknown}; known: {list(known)}"
        )
    return kinds


FULL_SIZE = os.environ.get("BACKBURNER_TEST_FULL", "").lower() in ("1", "true", "yes")
"""BACKBURNER_TEST_FULL=1: every variant of the chaos tests that CI runs a share of (each
variant still runs in CI on at least one store; see ci_share)."""


def ci_share(full: list[tuple[str, str]], ci: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (store, variant) pairs a chaos test runs: all of `full` with BACKBURNER_TEST_FULL,
    else only those in `ci` (CI's time budget), keeping `full`'s order."""
    return list(full) if FULL_SIZE else [pair for pair in full if pair in ci]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_service(url: str) -> None:
    """Fail under CI, skip loudly elsewhere, when the server behind `url` is not listening."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 5432)
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{parts.scheme} server at {host}:{port} is not reachable ({exc})"
    if IN_CI:
        pytest.fail(f"{reason}: CI must run these tests (.ci/run starts the services)")
    with warnings.catch_warnings():
        # Into pytest's warnings summary: filterwarnings=error would make the skip an error.
        warnings.simplefilter("always")
        warnings.warn(f"SKIPPING: {reason}", stacklevel=2)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@dataclass(frozen=True)
class StoreUrls:
    """How tests reach one registered store."""

    make: Callable[[Path], str]
    """A URL isolated to one test (given its tmp_path): its own file, key prefix or schema."""
    server: bool
    """The store is a server the tests must reach (SERVER_BACKENDS)."""


def _token() -> str:
    return uuid.uuid4().hex[:12]


_CLUSTER: list[str] = []
"""The URL of the run's private Redis Cluster, once started (BACKBURNER_TEST_REDIS_CLUSTER)."""


def _cluster_url() -> str:
    if not _CLUSTER:
        import atexit
        import shutil
        import tempfile

        from redis_cluster import RedisClusterSetup

        directory = Path(tempfile.mkdtemp(prefix="bb-redis-cluster-"))
        cluster = RedisClusterSetup(directory)
        cluster.start()
        atexit.register(shutil.rmtree, directory, True)  # runs after the stop below
        atexit.register(cluster.stop)
        _CLUSTER.append(cluster.url)
    return _CLUSTER[0]


def _redis_url(tmp_path: Path) -> str:
    if os.environ.get("BACKBURNER_TEST_REDIS_CLUSTER", "") == "1":
        return f"{_cluster_url()}?prefix=bbt-{_token()}"
    require_service(REDIS_URL)
    return f"{REDIS_URL}?prefix=bbt-{_token()}"


def _postgres_url(tmp_path: Path) -> str:
    require_service(POSTGRES_URL)
    # The URL may carry options already (pooler=transaction: the run through PgBouncer).
    joiner = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{joiner}schema=bbt_{_token()}"


def _mysql_url(tmp_path: Path) -> str:
    require_service(MYSQL_URL)
    return f"{MYSQL_URL.rstrip('/')}/bbt_{_token()}"  # the backend creates the database


TEST_URLS: dict[str, StoreUrls] = {
    "memory": StoreUrls(lambda tmp_path: "memory://", server=False),
    "sqlite": StoreUrls(lambda tmp_path: f"sqlite:///{tmp_path}/jobs.db", server=False),
    "redis": StoreUrls(_redis_url, server=True),
    "postgres": StoreUrls(_postgres_url, server=True),
    "mysql": StoreUrls(_mysql_url, server=True),
}
"""Keyed by one registered scheme of each store, which names its test kind; in the order tests
run them. Every store of the registry needs exactly one entry here (see `store_kinds`)."""


def store_kinds() -> tuple[str, ...]:
    """The test kinds: one per store the registry holds (schemes naming the same factory are
    one store), named by its scheme in TEST_URLS. A registered store with no URL maker
    fails the run instead of going untested."""
    stores = installed_stores()
    schemes_of: dict[str, list[str]] = {}
    for scheme, entry in sorted(stores.entries.items()):
        schemes_of.setdefault(entry.target, []).append(scheme)
    problems = [f"scheme {scheme!r} is claimed by several packages" for scheme in stores.clashes]
    kinds: set[str] = set()
    for target, schemes in schemes_of.items():
        named = [scheme for scheme in schemes if scheme in TEST_URLS]
        if len(named) == 1:
            kinds.add(named[0])
        else:
            problems.append(
                f"{target} (schemes {schemes}) needs exactly one URL maker in "
                f"tests/services.py TEST_URLS, has {len(named)}"
            )
    problems += [
        f"TEST_URLS[{scheme!r}] names no registered store" for scheme in TEST_URLS
        if scheme not in stores.entries
    ]
    if problems:
        raise pytest.UsageError("stores registered in 'backburner.stores': " + "; ".join(problems))
    return tuple(kind for kind in TEST_URLS if kind in kinds)


ALL_BACKENDS = store_kinds()
ONLY_BACKENDS = _only(ALL_BACKENDS)
BACKENDS = [kind for kind in ALL_BACKENDS if ONLY_BACKENDS is None or kind in ONLY_BACKENDS]
"""What the `backend` fixture runs each test on."""
SERVER_BACKENDS = [kind for kind in BACKENDS if TEST_URLS[kind].server]
"""The server stores among them: every registered one joins the tests (unless restricted)."""


def backend_url(kind: str, tmp_path: Path) -> str:
    """A URL isolated to one test: its own file, key prefix or schema."""
    if kind not in ALL_BACKENDS:
        raise ValueError(f"unknown store kind {kind!r}; known: {list(ALL_BACKENDS)}")
    return TEST_URLS[kind].make(tmp_path)


def destroy_store(url: str) -> None:
    """Remove what a test made under `url` (a Redis prefix, a PostgreSQL schema); a SQLite
    file goes with the test's tmp_path. Synchronous, for the teardown of sync fixtures."""

    async def destroy() -> None:
        from backburner.backends import open_backend

        backend = open_backend(url)
        await backend.open()
        remove = getattr(backend, "destroy", None)
        if remove is not None:
            await remove()
        await backend.close()

    asyncio.run(destroy())
