"""Unique keys and attempt outcomes (backburner.backends.unique_rules, attempt_rules) against
every store, with hypothesis.

Random jobs, some with unique keys of every scope, go through random transitions: claims,
completions, failures retried or not (counted or not, by error or by a cancel), give-backs,
cancel, retry and delete by hand. The memory store applies the rules as written, so it is the
model: after every step each other store (SQLite and PostgreSQL keep the rules as their unique
index's predicate and their statements', Redis as Lua) must have answered every insert the same
way (stored, or the holder's id and state) and hold the same jobs, field by field.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backburner.backends.memory import MemoryBackend
from backburner.backends.protocol import Backend, Completion, Failure, NewJob, Release
from backburner.backends.unique_rules import KeyHolder, answer_insert, holds_key, keeps_key_on_retry
from backburner.job import FailureReason, JobState
from backburner.unique import UniqueScope
from tests.contract.model_stores import MODEL_CHECKED, store_on_loop

Step = tuple[Any, ...]

inserts = st.tuples(
    st.just("insert"),
    st.sampled_from([None, "a", "b"]),
    st.sampled_from([UniqueScope.ACTIVE, UniqueScope.QUEUED, UniqueScope.PERIOD]),
)
endings = st.tuples(
    st.sampled_from(["complete", "release", "fail"]),
    st.integers(1, 3),
    st.sampled_from([None, 0.0]),  # retry_in
    st.booleans(),  # counts
    st.sampled_from([FailureReason.ERROR, FailureReason.CANCELLED, FailureReason.TIMEOUT]),
)
by_hand = st.tuples(st.sampled_from(["cancel", "retry", "delete"]), st.integers(0, 7))
# Inserts and claims come often, so most cases get jobs running before they end. A claim
# takes every ready job: which of several ready jobs a smaller claim takes first is the claim
# contract's business (tests/contract/test_transitions.py), and PostgreSQL lets a job whose
# retry just came due wait behind pending ones until a claim is not filled by them.
steps = st.lists(
    st.one_of(
        inserts, inserts, st.tuples(st.just("claim"), st.just(100)), endings, endings,
        by_hand,
    ),
    min_size=3,
    max_size=16,
)


class Driver:
    """Runs steps on one store and records what it answered, with job ids made comparable
    between stores (the insert's number)."""

    def __init__(self, backend: Backend, queue: str) -> None:
        self.backend, self.queue = backend, queue
        self.inserted = 0
        self.held: dict[str, int] = {}
        self.answers: list[Any] = []

    def number(self, job_id: str) -> int:
        return int(job_id.rsplit("-", 1)[1])

    async def step(self, step: Step) -> None:
        kind = step[0]
        if kind == "insert":
            job_id = f"{self.queue}-{self.inserted}"
            self.inserted += 1
            _, key, scope = step
            job = NewJob(
                id=job_id, task="t", queue=self.queue, priority=0, args="[]", kwargs="{}",
                max_attempts=3, unique_key=key, unique_scope=scope,
                unique_for=3600.0 if scope is UniqueScope.PERIOD else None,
            )
            (answer,) = await self.backend.insert([job])
            state = answer.holder_state.value if answer.holder_state else None
            self.answers.append((self.number(answer.id), state))
        elif kind == "claim":
            claim = await self.backend.claim("w", [self.queue], step[1], 60.0)
            self.held.update((j.id, j.attempt) for j in claim.jobs)
            self.answers.append(sorted(self.number(j.id) for j in claim.jobs))
        elif kind in ("complete", "release", "fail"):
            await self.end(*step)
        else:
            job_id = f"{self.queue}-{step[1]}"
            call = getattr(self.backend, kind)
            answer = await call(job_id)
            self.answers.append(answer.value if isinstance(answer, JobState) else answer)

    async def end(
        self, kind: str, n: int, retry_in: float | None, counts: bool, reason: FailureReason
    ) -> None:
        ending = sorted(self.held, key=self.number)[:n]
        if kind == "complete":
            done = await self.backend.complete([Completion(i, self.held[i], "1") for i in ending])
        elif kind == "release":
            done = await self.backend.release([Release(i, self.held[i]) for i in ending])
        else:
            error = {"type": "Boom", "message": "m", "traceback": None}
            done = await self.backend.fail([
                Failure(i, self.held[i], error, reason, retry_in=retry_in, counts=counts)
                for i in ending
            ])
        self.answers.append(done)
        for i in ending:
            del self.held[i]

    async def records(self) -> dict[int, Any]:
        found = {}
        for n in range(self.inserted):
            record = await self.backend.get(f"{self.queue}-{n}")
            found[n] = None if record is None else (
                record.state.value, record.attempt, record.failures,
                record.reason.value if record.reason else None, record.unique_key,
                record.cancel_requested, [(e.type, e.reason) for e in record.errors],
            )
        return found


async def run_case(store: Backend, plan: list[Step]) -> None:
    model = MemoryBackend()
    await model.open()
    queue = f"q{uuid.uuid4().hex[:10]}"
    expected, got = Driver(model, queue), Driver(store, queue)
    for number, step in enumerate(plan):
        await expected.step(step)
        await got.step(step)
        assert (got.answers, await got.records()) == (
            expected.answers, await expected.records()
        ), f"after step {number} {step} of {plan}"
    await model.close()


@pytest.mark.parametrize("kind", MODEL_CHECKED)
def test_every_store_applies_the_unique_and_attempt_rules(kind: str, tmp_path: Path) -> None:
    with store_on_loop(kind, tmp_path) as (loop, store):
        @settings(max_examples=200, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(plan=steps)
        def check(plan: list[Step]) -> None:
            loop.run_until_complete(run_case(store, plan))

        check()


holders = st.builds(
    KeyHolder,
    id=st.sampled_from(["a", "b"]),
    state=st.sampled_from(list(JobState)),
    scope=st.sampled_from(list(UniqueScope)),
    attempt=st.integers(0, 2),
    unique_until=st.none() | st.floats(90.0, 110.0),
)


@settings(max_examples=300, database=None)
@given(holder=st.none() | holders)
def test_unique_rules_agree(holder: KeyHolder | None) -> None:
    """One predicate behind every answer: an insert is refused exactly while the last taker
    holds the key, and a retried job gets its key back exactly when no other job holds it."""
    now = 100.0
    answer = answer_insert(holder, now)
    held = holder is not None and holds_key(holder, now)
    assert (answer is not None) == held
    if answer is not None and holder is not None:
        assert (answer.id, answer.holder_state) == (holder.id, holder.state)
    assert keeps_key_on_retry("a", holder, now) == (not held or holder is None or holder.id == "a")
    if holder is not None and holder.scope is UniqueScope.ACTIVE:
        assert held == (not holder.state.is_terminal)
