"""Multi-host PostgreSQL URLs (failover, R29): the hosts are tried one at a time, each with the
whole connect_timeout, so a first host that never answers (a hung or unplugged primary: the
handshake is neither refused nor completed) does not keep every connection from reaching
the next one."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from services import POSTGRES_URL, require_service

from backburner import Backburner, ConfigurationError, JobState
from backburner.backends.postgres.connections import split_hosts

from .pg_helpers import opened


@pytest.mark.parametrize(("dsn", "expected"), [
    ("postgresql://u@h:5432/db", ["postgresql://u@h:5432/db"]),
    ("postgresql://u:p@h1:5432,h2:5433/db?target_session_attrs=read-write",
     ["postgresql://u:p@h1:5432/db?target_session_attrs=read-write",
      "postgresql://u:p@h2:5433/db?target_session_attrs=read-write"]),
    ("postgresql://h1,[::1]:5433/db", ["postgresql://h1/db", "postgresql://[::1]:5433/db"]),
    # asyncpg alone can fall back to a primary when no standby answers.
    ("postgresql://h1,h2/db?target_session_attrs=prefer-standby",
     ["postgresql://h1,h2/db?target_session_attrs=prefer-standby"]),
])
def test_split_hosts(dsn: str, expected: list[str]) -> None:
    assert split_hosts(dsn) == expected


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel completes and nobody ever answers: a hung
    server, as far as a client can tell."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def _hosts(first: str, url: str) -> str:
    parts = urlsplit(url)
    userinfo = f"{parts.username}@" if parts.username else ""
    netloc = f"{userinfo}{first},{parts.hostname}:{parts.port or 5432}"
    return parts._replace(netloc=netloc).geturl()


async def test_a_silent_first_host_costs_one_connect_timeout_then_the_next_serves(
    silent_port: int,
) -> None:
    require_service(POSTGRES_URL)
    url = _hosts(f"127.0.0.1:{silent_port}", POSTGRES_URL)
    schema = f"bbt_hosts_{int(time.time() * 1000) % 10**9}"
    started = time.monotonic()
    async with opened(f"{url}?schema={schema}&connect_timeout=1&pool_min_size=0") as backend:
        app = Backburner(backend=backend)

        @app.task(name="hosts.echo")
        async def echo(x: int) -> int:
            return x

        await app.open()
        job = await echo.enqueue(7)
        opened_after = time.monotonic() - started
        await app.run_worker(burst=True)
        record = await backend.get(job.id)
        assert record is not None and record.state is JobState.COMPLETED
    # Each new connection waits out the silent host once (1 s) before the next one serves:
    # without per-host timeouts it would never get past it.
    assert opened_after >= 1.0


async def test_a_refused_login_is_not_passed_on_to_the_next_host(silent_port: int) -> None:
    require_service(POSTGRES_URL)
    parts = urlsplit(POSTGRES_URL)
    # The first host answers and refuses (no such database): that is the operator's to fix,
    # not a host to skip.
    url = parts._replace(
        netloc=f"postgres@{parts.hostname}:{parts.port or 5432},127.0.0.1:{silent_port}",
        path="/bbt_no_such_database",
    ).geturl()
    with pytest.raises(ConfigurationError, match="does not exist"):
        async with opened(f"{url}?connect_timeout=1"):
            pass
