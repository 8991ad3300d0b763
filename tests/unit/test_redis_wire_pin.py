"""What backends/redis/wire.py relies on in redis-py and hiredis, checked against the release
installed, so that a new release that changes it fails here, with the reason, instead of
silently bypassing (or breaking) the hiredis packer. pyproject.toml caps redis at the releases
this passed with: raise the cap only after this file passes on the new release."""

from __future__ import annotations

import inspect
from importlib.metadata import requires, version

import pytest

pytest.importorskip("redis")
hiredis = pytest.importorskip("hiredis")

from packaging.requirements import Requirement  # noqa: E402
from redis.asyncio import BlockingConnectionPool  # noqa: E402
from redis.asyncio import connection as rconn  # noqa: E402

from backburner.backends.redis import wire  # noqa: E402

REDIS = version("redis")
WHY = "review src/backburner/backends/redis/wire.py before raising redis's cap in pyproject.toml"


def test_the_installed_redis_is_in_the_range_wire_py_was_tested_with() -> None:
    reqs = [Requirement(r) for r in requires("backburner") or []]
    for req in [r for r in reqs if r.name == "redis"]:
        assert req.specifier.contains(REDIS, prereleases=True), (
            f"redis {REDIS} is outside pyproject.toml's tested range {req.specifier}: {WHY}"
        )


def test_hiredis_packs_a_tuple_of_arguments() -> None:
    assert callable(getattr(hiredis, "pack_command", None)), (
        f"hiredis {version('hiredis')} has no pack_command: wire.py falls back to redis-py's "
        "packer (slower, still correct)"
    )
    expected = b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\n1\r\n"
    assert hiredis.pack_command(("SET", "k", b"v", 1)) == expected


@pytest.mark.parametrize("name", ["Connection", "SSLConnection", "UnixDomainSocketConnection"])
def test_every_connection_class_packs_through_pack_command(name: str) -> None:
    cls = getattr(rconn, name, None)
    assert isinstance(cls, type), f"redis {REDIS}: redis.asyncio.connection.{name} is gone: {WHY}"
    method = getattr(cls, "pack_command", None)
    assert callable(method), f"redis {REDIS}: {name}.pack_command is gone: {WHY}"
    params = list(inspect.signature(method).parameters.values())
    assert [p.kind for p in params] == [inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                         inspect.Parameter.VAR_POSITIONAL], (
        f"redis {REDIS}: {name}.pack_command{inspect.signature(method)} is no longer "
        f"(self, *args), which wire.py overrides and calls: {WHY}"
    )
    packed = wire.packed(cls)
    assert issubclass(packed, cls) and packed.pack_command is wire._HiredisPacking.pack_command


def test_commands_and_pipelines_reach_pack_command() -> None:
    send = inspect.getsource(rconn.AbstractConnection.send_command)
    assert "self.pack_command(" in send, (
        f"redis {REDIS}: AbstractConnection.send_command no longer calls self.pack_command, "
        f"so wire.py's packer is bypassed for single commands: {WHY}"
    )
    pipeline = inspect.getsource(rconn.AbstractConnection.pack_commands)
    assert "self.pack_command(" in pipeline, (
        f"redis {REDIS}: AbstractConnection.pack_commands no longer calls self.pack_command, "
        f"so wire.py's packer is bypassed for pipelines: {WHY}"
    )


def test_the_pool_builds_connections_from_its_connection_class_attribute() -> None:
    # backend.py replaces pool.connection_class after from_url(): the pool must read the
    # attribute when it makes a connection, not a copy taken at construction.
    pool = BlockingConnectionPool.from_url("redis://127.0.0.1:6379/0")
    assert hasattr(pool, "connection_class"), (
        f"redis {REDIS}: connection pools have no connection_class attribute any more: {WHY}"
    )
    pool.connection_class = wire.packed(pool.connection_class)
    made = pool.make_connection()
    assert isinstance(made, wire._HiredisPacking), (
        f"redis {REDIS}: a pool's make_connection() ignores a connection_class set after "
        f"construction, so backend.py's hiredis packing is not used: {WHY}"
    )
