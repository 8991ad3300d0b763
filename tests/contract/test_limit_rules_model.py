"""The limit rules (backburner.backends.limit_rules) against every store, with hypothesis.

Random jobs of one task with a concurrency limit, per-key limits and a rate go through random
claims (of random sizes) and outcomes (completed, failed, given back). The memory store admits
one job at a time through the rules with no I/O, so it is the model: after every step each
other store (SQLite and PostgreSQL admit a claimed batch through the same rules, Redis has its
own Lua port) must have the same jobs running, waiting and delayed. A port that drifts from the
Python rule fails here.

The rules alone are checked by test_plan_admission_properties: no group ever runs more than
its limit after a claim, nothing is refused while its groups have room, no window gets more
starts than its rate.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backburner.backends.limit_rules import LimitedJob, groups_of, plan_admission
from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend, Completion, Failure, NewJob, Release
from backburner.job import FailureReason
from tests.contract.model_stores import MODEL_CHECKED, store_on_loop

RATE_PERIOD = 3600.0
"""Long enough that no start leaves the window during a test: delayed jobs stay delayed."""


@dataclass(frozen=True)
class Limits:
    concurrency: int | None
    per_key: int | None
    rate: int | None
    keys: tuple[str | None, ...]
    priorities: tuple[int, ...]


@st.composite
def limits(draw: st.DrawFn) -> Limits:
    n = draw(st.integers(1, 9))
    return Limits(
        concurrency=draw(st.none() | st.integers(1, 4)),
        per_key=draw(st.none() | st.integers(1, 2)),
        rate=draw(st.none() | st.integers(1, 6)),
        keys=tuple(draw(st.lists(st.sampled_from([None, "a", "b"]), min_size=n, max_size=n))),
        priorities=tuple(draw(st.lists(st.sampled_from([0, 0, 5]), min_size=n, max_size=n))),
    )


Step = tuple[str, int]
steps = st.lists(
    st.tuples(st.sampled_from(["claim", "complete", "fail", "release"]), st.integers(1, 5)),
    min_size=1,
    max_size=10,
)


def new_jobs(spec: Limits, queue: str) -> list[NewJob]:
    return [
        NewJob(
            id=f"{queue}-{i}", task="limited", queue=queue, priority=spec.priorities[i],
            args="[]", kwargs="{}", max_attempts=5, limit_concurrency=spec.concurrency,
            limit_key=key if spec.per_key is not None and key is not None else None,
            limit_key_concurrency=spec.per_key if key is not None else None,
            rate_count=spec.rate, rate_period=RATE_PERIOD if spec.rate else None,
        )
        for i, key in enumerate(spec.keys)
    ]


async def apply(backend: Backend, queue: str, step: Step, running: dict[str, int]) -> None:
    """One step; `running` (job id -> attempt) is what this store's worker holds."""
    kind, n = step
    if kind == "claim":
        claim = await backend.claim("w", [queue], n, 60.0)
        running.update((job.id, job.attempt) for job in claim.jobs)
        return
    # The n oldest jobs the worker holds end (ids sort as they were inserted).
    ending = sorted(running, key=lambda i: int(i.rsplit("-", 1)[1]))[:n]
    if kind == "complete":
        await backend.complete([Completion(i, running[i], "null") for i in ending])
    elif kind == "fail":
        await backend.fail([
            Failure(i, running[i], {"type": "Boom", "message": "", "traceback": None},
                    FailureReason.ERROR)
            for i in ending
        ])
    else:
        await backend.release([Release(i, running[i]) for i in ending])
    for i in ending:
        del running[i]


async def states(backend: Backend, queue: str, n: int) -> dict[int, str]:
    found = {}
    for i in range(n):
        record = await backend.get(f"{queue}-{i}")
        found[i] = record.state.value if record is not None else "gone"
    return found


async def run_case(store: Backend, spec: Limits, plan: list[Step]) -> None:
    model = MemoryBackend()
    await model.open()
    queue = f"q{uuid.uuid4().hex[:10]}"
    jobs = new_jobs(spec, queue)
    await model.insert(jobs)
    await store.insert(jobs)
    held: tuple[dict[str, int], dict[str, int]] = ({}, {})
    for number, step in enumerate(plan):
        await apply(model, queue, step, held[0])
        await apply(store, queue, step, held[1])
        expected = await states(model, queue, len(jobs))
        got = await states(store, queue, len(jobs))
        assert (sorted(held[1]), got) == (sorted(held[0]), expected), (
            f"after step {number} {step} of {plan} with {spec}"
        )
    await model.close()


@pytest.mark.parametrize("kind", MODEL_CHECKED)
def test_every_store_applies_the_limit_rules(kind: str, tmp_path: Path) -> None:
    with store_on_loop(kind, tmp_path) as (loop, store):
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(spec=limits(), plan=steps)
        def check(spec: Limits, plan: list[Step]) -> None:
            loop.run_until_complete(run_case(store, spec, plan))

        check()


limited_jobs = st.lists(
    st.builds(
        LimitedJob,
        id=st.uuids().map(str),
        queue=st.just("q"),
        task=st.sampled_from(["t", "u"]),
        priority=st.sampled_from([0, 1]),
        order=st.integers(0, 100),
        limit_concurrency=st.none() | st.integers(1, 3),
        limit_key=st.none() | st.sampled_from(["a", "b"]),
        limit_key_concurrency=st.none() | st.integers(1, 2),
        rate_count=st.none() | st.integers(1, 3),
        rate_period=st.just(10.0),
    ),
    max_size=8,
    unique_by=lambda j: j.id,
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    claimed=limited_jobs,
    already=st.integers(0, 3),
    earlier_starts=st.lists(st.floats(91.0, 100.0), max_size=4),
)
def test_plan_admission_properties(
    claimed: list[LimitedJob], already: int, earlier_starts: list[float]
) -> None:
    # Rates: one rate per task, as a task's jobs all share it.
    rate = {}
    for job in claimed:
        rate.setdefault(job.task, (job.rate_count, job.rate_period))
    claimed = [
        replace(j, rate_count=rate[j.task][0], rate_period=rate[j.task][1]) for j in claimed
    ]
    # A group's limit is the same for every job in it (the task's options).
    limits: dict[object, int] = {}
    for job in claimed:
        for group, limit in job.groups:
            limits.setdefault(group, limit)
    claimed = [j for j in claimed if all(limits[g] == lim for g, lim in j.groups)]
    groups = groups_of(claimed)
    in_claim = {g: sum(1 for j in claimed if g in dict(j.groups)) for g in groups}
    running = {g: in_claim[g] + already for g in groups}
    starts = {(j.queue, j.task): sorted(earlier_starts) for j in claimed if j.rated}
    now = 100.0
    admission = plan_admission(claimed, running, starts, now)
    refused = admission.refused
    assert len(refused) == len(admission.parked) + len(admission.delayed)
    parked = {job_id for job_id, _ in admission.parked}
    for group in groups:
        kept = sum(1 for j in claimed if j.id not in refused and group in dict(j.groups))
        # Never over the limit because of this claim; refusals only where needed.
        assert kept + already <= max(limits[group], already), (group, admission)
        refused_here = [j for j in claimed if j.id in parked and group in dict(j.groups)]
        if refused_here and kept + already < limits[group]:
            # Refused for another of its groups then.
            assert all(len(j.groups) > 1 for j in refused_here)
    for (queue, task), recorded in admission.starts.items():
        count = rate[task][0]
        assert count is not None
        assert recorded + len(starts[(queue, task)]) <= count
    for _, run_at in admission.delayed:
        assert run_at > now
    assert json.dumps(admission.next_run_at)  # a plain number or None
