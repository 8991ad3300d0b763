"""No asyncpg exception leaves the PostgreSQL backend: a server that is down or a connection
that died is BackendUnavailableError (workers back off, the API answers 503), a missing
database is a ConfigurationError, anything else a BackendError."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
from services import POSTGRES_URL, free_port

from backburner import Backburner
from backburner.backends.postgres import PostgresBackend
from backburner.backends.protocol import JobFilter, NewJob
from backburner.errors import BackendError, BackendUnavailableError, ConfigurationError
from backburner.ids import new_job_id

from .pg_helpers import admin, opened, schema_url, terminate


def _job() -> NewJob:
    return NewJob(
        id=new_job_id(), task="t", queue="default", priority=0, args="[]", kwargs="{}",
        max_attempts=1,
    )


async def test_a_server_that_is_down_is_unavailable_not_a_driver_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test?schema=x&connect_timeout=2"
    backend = PostgresBackend(url)
    with pytest.raises(BackendUnavailableError) as caught:
        await backend.open()
    assert not isinstance(caught.value, asyncpg.PostgresError)
    app = Backburner(url)

    @app.task
    async def noop() -> None: ...

    with pytest.raises(BackendUnavailableError):
        await noop.enqueue()
    with pytest.raises(BackendUnavailableError):
        await app.get_job("x")
    with pytest.raises(BackendUnavailableError):
        await backend.migrate()
    await app.close()
    await backend.close()


async def test_a_missing_database_is_a_configuration_error() -> None:
    _, _ = schema_url()  # skips or fails loudly without a server
    backend = PostgresBackend(POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_database_bbt")
    with pytest.raises(ConfigurationError):
        await backend.open()
    await backend.close()


async def test_terminated_connections_surface_as_unavailable_then_heal() -> None:
    url, schema = schema_url(pool_size="2")
    async with opened(url) as backend, admin() as conn:
        await backend.insert([_job()])
        for _ in range(5):
            assert await terminate(conn, f"backburner:{schema}") >= 1
            outcomes = []
            for _ in range(4):
                try:
                    outcomes.append(len((await backend.list_jobs(JobFilter())).jobs))
                except BackendUnavailableError:
                    outcomes.append(-1)
            # Idle connections that died are replaced when taken from the pool; at worst
            # one call per dead connection fails, and never with a driver exception.
            assert outcomes[-1] == 1, outcomes


async def test_other_server_errors_are_backend_errors() -> None:
    url, schema = schema_url()
    async with opened(url) as backend, admin() as conn:
        await conn.execute(f'DROP TABLE "{schema}".jobs')
        with pytest.raises(BackendError) as caught:
            await backend.get("x")
        assert not isinstance(caught.value, BackendUnavailableError)
        assert "PostgreSQL error" in str(caught.value)


async def test_a_duplicate_id_is_refused_and_nothing_is_stored() -> None:
    url, _ = schema_url()
    async with opened(url) as backend:
        first = _job()
        await backend.insert([first])
        with pytest.raises(ConfigurationError, match="duplicate"):
            await backend.insert([_job(), first])
        assert sum((await backend.counts()).values()) == 1
