"""The flow rules (backburner.backends.flow_rules) against every store, with hypothesis.

Random flows (any graph where a job waits for earlier jobs of its batch, with or without what
it `receives`) go through random transitions: workers completing, failing for good, failing
with a retry, being cancelled; cancel, retry and delete by hand. The memory store applies the
rules with no I/O, so it is the model: after every step each other store (SQLite and
PostgreSQL drive the same rules through SQL, Redis has its own Lua port) must hold exactly what
the model holds, job by job. A Lua port that drifts from the Python rule fails here.

Pure properties of the plans themselves (a release happens only once every dependency
completed, a cancel reaches everything downstream, a retry re-arms what it cancelled) are in
test_flow_rules_properties below, on the model alone.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend, Completion, Failure, NewJob
from backburner.job import FailureReason, JobState
from tests.contract.model_stores import MODEL_CHECKED, store_on_loop

OUTCOMES = ("complete", "fail", "retry", "cancelled")


@dataclass(frozen=True)
class Shape:
    parents: tuple[tuple[int, ...], ...]
    """Per job, the earlier jobs it waits for."""
    receives: tuple[str | None, ...]
    args: tuple[str, ...]


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    n = draw(st.integers(2, 7))
    parents: list[tuple[int, ...]] = [()]
    for i in range(1, n):
        chosen = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True))
        parents.append(tuple(sorted(chosen)))
    receives = []
    for p in parents:
        options: list[str | None] = [None]
        if len(p) == 1:
            options.append("result")
        if p:
            options.append("results")
        receives.append(draw(st.sampled_from(options)))
    args = tuple(draw(st.sampled_from(["[]", '["x"]', '[1, {"k": 2}]'])) for _ in range(n))
    return Shape(tuple(parents), tuple(receives), args)


Step = tuple[str, Any]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("work"), st.lists(st.sampled_from(OUTCOMES), min_size=7, max_size=7)),
        st.tuples(st.sampled_from(["cancel", "retry", "delete"]), st.integers(0, 6)),
    ),
    min_size=1,
    max_size=8,
)


def new_jobs(shape: Shape, queue: str) -> list[NewJob]:
    ids = [f"{queue}-{i}" for i in range(len(shape.parents))]
    dependents: list[list[str]] = [[] for _ in ids]
    for i, parents in enumerate(shape.parents):
        for p in parents:
            dependents[p].append(ids[i])
    return [
        NewJob(
            id=ids[i], task="step", queue=queue, priority=0, args=shape.args[i], kwargs="{}",
            max_attempts=3, flow_id=ids[0], depends_on=tuple(ids[p] for p in parents),
            dependents=tuple(dependents[i]),
            receives=shape.receives[i] if parents else None,  # type: ignore[arg-type]
        )
        for i, parents in enumerate(shape.parents)
    ]


async def apply(backend: Backend, queue: str, step: Step) -> None:
    kind, what = step
    if kind == "work":
        claim = await backend.claim("w", [queue], 100, 60.0)
        completions, failures = [], []
        for job in claim.jobs:
            outcome = what[int(job.id.rsplit("-", 1)[1])]
            if outcome == "complete":
                completions.append(Completion(job.id, job.attempt, json.dumps(job.id),
                                              job.has_dependents))
                continue
            reason = FailureReason.CANCELLED if outcome == "cancelled" else FailureReason.ERROR
            failures.append(Failure(
                job.id, job.attempt, {"type": "Boom", "message": outcome, "traceback": None},
                reason, retry_in=0.0 if outcome == "retry" else None,
                has_dependents=job.has_dependents,
            ))
        await backend.complete(completions)
        await backend.fail(failures)
        return
    job_id = f"{queue}-{what}"
    if kind == "cancel":
        await backend.cancel(job_id)
    elif kind == "retry":
        await backend.retry(job_id)
    else:
        await backend.delete(job_id)


async def snapshot(backend: Backend, queue: str, n: int) -> dict[int, Any]:
    seen = {}
    for i in range(n):
        record = await backend.get(f"{queue}-{i}")
        if record is None:
            seen[i] = None
            continue
        seen[i] = {
            "state": record.state.value,
            "reason": record.reason.value if record.reason else None,
            "waiting_on": record.waiting_on,
            # Job ids differ between the two stores by their queue only.
            "args": json.loads(json.dumps(record.args).replace(queue, "Q")),
            "result": record.result.replace(queue, "Q") if isinstance(record.result, str)
            else record.result,
            "errors": [e.type for e in record.errors],
            "failures": record.failures,
        }
    return seen


async def run_case(store: Backend, shape: Shape, plan: list[Step]) -> None:
    model = MemoryBackend()
    await model.open()
    queue = f"q{uuid.uuid4().hex[:10]}"
    jobs = new_jobs(shape, queue)
    await model.insert(jobs)
    await store.insert(jobs)
    n = len(jobs)
    for number, step in enumerate(plan):
        await apply(model, queue, step)
        await apply(store, queue, step)
        expected = await snapshot(model, queue, n)
        got = await snapshot(store, queue, n)
        assert got == expected, f"after step {number} {step} of {plan} on {shape}"
    await model.close()


@pytest.mark.parametrize("kind", MODEL_CHECKED)
def test_every_store_applies_the_flow_rules(kind: str, tmp_path: Path) -> None:
    with store_on_loop(kind, tmp_path) as (loop, store):
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(shape=shapes(), plan=steps)
        def check(shape: Shape, plan: list[Step]) -> None:
            loop.run_until_complete(run_case(store, shape, plan))

        check()


@settings(max_examples=150, deadline=None, database=None)
@given(shape=shapes(), plan=steps)
def test_flow_rules_properties(shape: Shape, plan: list[Step]) -> None:
    """Invariants of the rules alone, on the model after every step: a job waiting for others
    waits exactly for those that have not completed (a dependency deleted after it completed
    no longer counts); a job that is ready, ran or runs had every dependency complete; a job
    cancelled for a dependency has one that did not complete or is gone."""

    async def run() -> None:
        model = MemoryBackend()
        await model.open()
        queue = "q"
        jobs = new_jobs(shape, queue)
        await model.insert(jobs)
        for step in plan:
            await apply(model, queue, step)
            records = {j.id: await model.get(j.id) for j in jobs}
            for job in jobs:
                record = records[job.id]
                if record is None:
                    continue
                parents = [records[p] for p in job.depends_on]
                unfinished = [
                    p for p in parents if p is not None and p.state is not JobState.COMPLETED
                ]
                if record.state is JobState.SCHEDULED and record.waiting_on > 0:
                    assert record.waiting_on == len(unfinished), (job.id, step)
                if job.depends_on and record.state in (JobState.PENDING, JobState.RUNNING,
                                                       JobState.COMPLETED):
                    assert not unfinished, (job.id, step)
                if record.reason is FailureReason.DEPENDENCY_FAILED:
                    assert unfinished or None in parents, (job.id, step)

    asyncio.run(run())
