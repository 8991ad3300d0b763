"""A job's meta (NewJob.meta) on every backend: given on insert, it comes back with the claim
and in the records of `get` and `list_jobs`, whichever way the job was inserted (plain,
unique, limited, a flow's), and is never among the arguments the task is called with."""

from __future__ import annotations

from typing import Any

from backburner import Backburner, codec
from backburner.backends.protocol import Backend, Completion, JobFilter, NewJob
from backburner.ids import new_job_id
from backburner.unique import UniqueScope

META = {"trace": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        "note": "nul \x00 and unicode \u00e9 kept"}


def job(task: str = "t", meta: dict[str, Any] | None = META, **fields: Any) -> NewJob:
    return NewJob(
        id=new_job_id(), task=task, queue="default", priority=0, args="[]",
        kwargs=codec.dumps({"k": 1}), max_attempts=1,
        meta=None if meta is None else codec.dumps(meta), **fields,
    )


async def claimed_meta(backend: Backend) -> dict[str, Any | None]:
    claim = await backend.claim("w1", ["default"], 10, 30)
    return {j.id: None if j.meta is None else codec.loads(j.meta) for j in claim.jobs}


async def test_meta_comes_back_on_claim_get_and_list(backend: Backend) -> None:
    plain = job()
    unique = job(task="u", unique_key="key", unique_scope=UniqueScope.ACTIVE)
    limited = job(task="l", limit_concurrency=5)
    bare = job(task="b", meta=None)
    for batch in ([plain, bare], [unique], [limited]):  # each insert path of the stores
        await backend.insert(batch)

    for one in (plain, unique, limited):
        record = await backend.get(one.id)
        assert record is not None and record.meta == META and record.kwargs == {"k": 1}
    record = await backend.get(bare.id)
    assert record is not None and record.meta == {}
    page = await backend.list_jobs(JobFilter(), limit=10)
    assert {r.id: r.meta for r in page.jobs} == {
        plain.id: META, unique.id: META, limited.id: META, bare.id: {},
    }

    claimed = await claimed_meta(backend)
    assert claimed == {plain.id: META, unique.id: META, limited.id: META, bare.id: None}


async def test_the_meta_of_a_flow_job_survives_its_release(backend: Backend) -> None:
    first_id, then_id = new_job_id(), new_job_id()
    first = NewJob(
        id=first_id, task="a", queue="default", priority=0, args="[]", kwargs="{}",
        max_attempts=1, flow_id=first_id, dependents=(then_id,),
        meta=codec.dumps({"step": 1}),
    )
    then = NewJob(
        id=then_id, task="b", queue="default", priority=0, args="[]", kwargs="{}",
        max_attempts=1, flow_id=first_id, depends_on=(first_id,),
        meta=codec.dumps({"step": 2}),
    )
    await backend.insert([first, then])
    waiting = await backend.get(then_id)
    assert waiting is not None and waiting.meta == {"step": 2}

    claim = await backend.claim("w1", ["default"], 10, 30)
    assert [(j.id, j.meta) for j in claim.jobs] == [(first_id, codec.dumps({"step": 1}))]
    done = claim.jobs[0]
    assert await backend.complete([Completion(done.id, done.attempt, "null", True)]) == [True]
    assert await claimed_meta(backend) == {then_id: {"step": 2}}


async def test_meta_is_never_among_the_task_arguments(app: Backburner) -> None:
    @app.task(name="meta.echo", retries=0)
    async def echo(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    stored = job(task="meta.echo", meta={"anything": 1, "x": 2})
    await app.backend.insert([stored])
    await app.run_worker(burst=True)
    record = await app.get_job(stored.id)
    assert record is not None and record.result == {"k": 1}
    assert record.meta == {"anything": 1, "x": 2}
