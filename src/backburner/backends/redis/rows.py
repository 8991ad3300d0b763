"""Job hashes and script replies to protocol objects, and protocol objects to script args.

A job is one hash; every value is a string. Absent fields are None (result, reason,
progress, worker_id, lease_until, started_at, finished_at, timeout, meta).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backburner import codec
from backburner.backends.attempt_rules import ended_state
from backburner.backends.protocol import ClaimedJob, Failure, NewJob, WorkerInfo
from backburner.backends.records import error_entry, record_from_row
from backburner.backends.redis.keys import limit_digest, unique_digest
from backburner.job import JobRecord

CLAIMED_FIELDS = 14
"""Fields per job in a claim reply (see lua/claim.lua)."""

_FIELDS = ("id", "task", "queue", "state", "args", "kwargs", "errors", "result", "reason",
           "progress", "worker_id", "unique_key", "flow_id", "depends_on", "dependents",
           "priority", "attempt", "max_attempts", "failures", "lost", "cancel_requested",
           "waiting_on", "timeout", "created_at", "updated_at", "run_at", "started_at",
           "finished_at", "lease_until", "meta")


def record_from_hash(h: Mapping[str, str]) -> JobRecord:
    """Every value is a string (absent: None); `record_from_row` reads numbers from strings,
    and shows a hash with unreadable fields marked rather than failing (R20)."""
    return record_from_row({name: h.get(name) for name in _FIELDS})


def claimed_jobs(queue: str, started_at: float, flat: Sequence[Any]) -> list[ClaimedJob]:
    jobs = []
    for i in range(0, len(flat), CLAIMED_FIELDS):
        (job_id, task, priority, args, kwargs, attempt, max_attempts, failures, lost,
         timeout, created_at, run_at, has_dependents, meta) = flat[i : i + CLAIMED_FIELDS]
        jobs.append(
            ClaimedJob(
                id=job_id, task=task, queue=queue, priority=int(priority), args=args,
                kwargs=kwargs, attempt=int(attempt), max_attempts=int(max_attempts),
                failures=int(failures), lost=int(lost),
                timeout=float(timeout) if timeout else None, created_at=float(created_at),
                run_at=float(run_at), started_at=started_at,
                has_dependents=int(has_dependents) == 1, meta=meta or None,
            )
        )
    return jobs


def insert_args(jobs: Sequence[NewJob]) -> list[str | int | float]:
    """The jobs of lua/insert.lua: 11 fields each, 3 more with a unique key, then the
    optional fields the job has, as field/value pairs (the server pays per argument)."""
    args: list[str | int | float] = []
    for j in jobs:
        extra = optional_fields(j)
        args += [
            j.id, j.task, j.priority, j.args, j.kwargs, j.max_attempts, repr(float(j.delay)),
            "" if j.run_at is None else repr(float(j.run_at)),
            "" if j.unique_key is None else j.unique_key,
            codec.dumps(list(j.depends_on)) if j.depends_on else "",
            len(extra) // 2,
        ]
        if j.unique_key is not None:
            args += unique_args(j)
        args += extra
    return args


def optional_fields(job: NewJob) -> list[str | int]:
    """The fields a job's hash has only when set, as field/value pairs."""
    fields: list[str | int] = []
    if job.timeout is not None:
        fields += ["timeout", repr(float(job.timeout))]
    if job.meta:
        fields += ["meta", job.meta]
    if job.limit_concurrency is not None:
        fields += ["limit_concurrency", job.limit_concurrency,
                   "limit_group", limit_digest("task", job.task)]
    if job.limit_key is not None and job.limit_key_concurrency is not None:
        fields += ["limit_key", job.limit_key, "limit_key_concurrency", job.limit_key_concurrency,
                   "limit_key_group", limit_digest("key", job.task, job.limit_key)]
    if job.rate_count is not None and job.rate_period is not None:
        fields += ["rate_count", job.rate_count, "rate_period", repr(float(job.rate_period)),
                   "rate_group", limit_digest("rate", job.task)]
    if job.flow_id:
        fields += ["flow_id", job.flow_id]
        if job.dependents:
            fields += ["dependents", codec.dumps(list(job.dependents))]
        if job.receives:
            fields += ["receives", job.receives]
    return fields


def unique_args(job: NewJob) -> list[str]:
    """After the key: its digest (names the key's Redis key, see keys.unique_digest), scope
    and unique_for."""
    assert job.unique_key is not None
    return [
        unique_digest(job.task, job.unique_key), job.unique_scope.value,
        "" if job.unique_for is None else repr(float(job.unique_for)),
    ]


def fail_args(items: Sequence[Failure]) -> list[str | int | float]:
    args: list[str | int | float] = []
    for i in items:
        # The stored entry is error_entry's; its time ("at") is added by the server's clock.
        entry = error_entry(i.error, i.attempt, i.reason, 0.0)
        del entry["at"]
        final = ended_state(i.reason).value
        args += [
            i.id, i.attempt, "" if i.retry_in is None else repr(float(i.retry_in)), final,
            i.reason.value, 1 if i.counts else 0, codec.dumps(entry),
        ]
    return args


def worker_json(info: WorkerInfo) -> str:
    """The registered form of a worker, without its times (added by the server)."""
    return codec.dumps({
        "id": info.id, "hostname": info.hostname, "pid": info.pid,
        "queues": list(info.queues), "concurrency": info.concurrency, "extra": info.extra,
    })


def worker_from_json(data: str, heartbeat_at: float | None) -> WorkerInfo:
    d = codec.loads(data)
    return WorkerInfo(
        id=d["id"], hostname=d["hostname"], pid=int(d["pid"]), queues=tuple(d["queues"]),
        concurrency=int(d["concurrency"]), started_at=float(d.get("started_at", 0.0)),
        heartbeat_at=heartbeat_at if heartbeat_at is not None else 0.0,
        extra=d.get("extra") or {},
    )
