"""Queue names are checked the same way everywhere (a task's queue, an enqueue's, a
flow's, a pause or resume, a filter): a non-empty string of at most 200 printable
characters. A CR, LF or NUL would forge lines in logs and listings, or be refused by a
store (PostgreSQL: NUL)."""

from __future__ import annotations

import pytest

from backburner import Backburner
from backburner.errors import ConfigurationError

BAD_QUEUES = ["", "a\r\nb", "a\x00b", "tab\there", "x" * 10_000]


@pytest.mark.parametrize("name", BAD_QUEUES)
async def test_a_bad_queue_name_is_refused_everywhere(app: Backburner, name: str) -> None:
    with pytest.raises(ConfigurationError, match="queue"):
        await app.pause_queue(name)
    with pytest.raises(ConfigurationError, match="queue"):
        await app.resume_queue(name)
    with pytest.raises(ConfigurationError, match="queue"):
        app.job_filter(queue=name)
    with pytest.raises(ConfigurationError, match="queue"):
        await app.count_jobs(queue=name)

    with pytest.raises(ConfigurationError, match="queue"):
        @app.task(queue=name)
        async def declared() -> None: ...

    @app.task
    async def plain() -> None: ...

    with pytest.raises(ConfigurationError, match="queue"):
        await plain.options(queue=name).enqueue()
    with pytest.raises(ConfigurationError, match="queue"):
        await app.chain(plain.call(), plain.call(), queue=name)
    with pytest.raises(ConfigurationError, match="queue"):
        await app.group([plain.call()], queue=name)
    # Nothing was stored or listed under it.
    assert [q.name for q in await app.queues()] == []
