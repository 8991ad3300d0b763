"""The MySQL backend's rows as the protocol and the shared rules read them, and the statements
built from plain data (inserts, listings). No I/O here."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from backburner import codec
from backburner.backends import records
from backburner.backends.flow_rules import FlowNode
from backburner.backends.limit_rules import Group, LimitedJob
from backburner.backends.mysql.connections import Row, Statement
from backburner.backends.protocol import ClaimedJob, JobFilter, JobPage, NewJob
from backburner.backends.records import id_list, record_from_row, seq_cursor
from backburner.job import WAITING_RUN_AT, JobState

_INSERTED = (
    "id", "task", "queue", "priority", "state", "args", "kwargs", "max_attempts", "timeout",
    "errors", "created_at", "updated_at", "run_at", "unique_key", "unique_scope",
    "unique_until", "unique_hash", "limit_concurrency", "limit_key", "limit_key_concurrency",
    "rate_count", "rate_period", "flow_id", "depends_on", "dependents", "waiting_on", "receives",
    "meta",
)
_ROW = "(" + ", ".join(["%s"] * len(_INSERTED)) + ")"


def digest(*parts: str | None) -> str:
    """A fixed-size name for variable text (lengths first, so no two tuples collide by
    concatenation): what the unique index and the limit lock rows hold."""
    text = "".join(f"{len(p)}:{p}" if p is not None else "-" for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def unique_hash(job: NewJob) -> str | None:
    return digest(job.queue, job.task, job.unique_key) if job.unique_key is not None else None


def insert_jobs(table: str, jobs: Sequence[NewJob], now: float) -> Statement:
    """One multi-row INSERT of new jobs, stamped `now` (the server's clock, read first)."""
    values: list[Any] = []
    for j in jobs:
        run_at = max(j.run_at if j.run_at is not None else now, now + j.delay)
        waiting = len(j.depends_on)
        state = "scheduled" if waiting or run_at > now else "pending"
        keyed = j.unique_key is not None
        values += (
            j.id, j.task, j.queue, j.priority, state, j.args, j.kwargs, j.max_attempts,
            j.timeout, "[]", now, now, WAITING_RUN_AT if waiting else run_at, j.unique_key,
            j.unique_scope.value if keyed else None,
            now + j.unique_for if keyed and j.unique_for is not None else None,
            unique_hash(j), j.limit_concurrency, j.limit_key, j.limit_key_concurrency,
            j.rate_count, j.rate_period, j.flow_id,
            codec.dumps(list(j.depends_on)) if j.depends_on else None,
            codec.dumps(list(j.dependents)) if j.dependents else None, waiting, j.receives,
            j.meta,
        )
    sql = (f"INSERT INTO {table} ({', '.join(_INSERTED)}) VALUES "
           + ", ".join([_ROW] * len(jobs)))
    return sql, tuple(values)


def claimed_job(r: Row, now: float) -> ClaimedJob:
    """A row read by the claim (before its start was written: attempt + 1, started now)."""
    return ClaimedJob(
        id=r["id"], task=r["task"], queue=r["queue"], priority=r["priority"], args=r["args"],
        kwargs=r["kwargs"], attempt=r["attempt"] + 1, max_attempts=r["max_attempts"],
        failures=r["failures"], lost=r["lost"], timeout=r["timeout"],
        created_at=r["created_at"], run_at=r["run_at"], started_at=now,
        has_dependents=bool(r["has_dependents"]), meta=r["meta"],
    )


def limited_job(r: Row) -> LimitedJob | None:
    """A row as the limit rules read it; None for a job without limits."""
    if (r["limit_concurrency"], r["limit_key_concurrency"], r.get("rate_count")) == (None,) * 3:
        return None
    return LimitedJob(
        id=r["id"], queue=r["queue"], task=r["task"], priority=r.get("priority", 0),
        order=r.get("seq", 0), limit_concurrency=r["limit_concurrency"],
        limit_key=r["limit_key"], limit_key_concurrency=r["limit_key_concurrency"],
        rate_count=r.get("rate_count"), rate_period=r.get("rate_period"),
    )


def lock_name(group: Group | tuple[str, str, str, None]) -> str:
    return digest("backburner.limit", *group)


def flow_node(r: Row) -> FlowNode | None:
    """A row as the flow rules read it; None (as if deleted) for a row something other than
    Backburner wrote with a state the rules cannot read (R20)."""
    try:
        state = JobState(r["state"])
    except ValueError:
        return None
    return FlowNode(
        id=r["id"], state=state, reason=r["reason"], waiting_on=r["waiting_on"],
        depends_on=id_list(r["depends_on"]), dependents=id_list(r["dependents"]),
        receives=r["receives"] if r["receives"] in ("result", "results") else None,
        args=r["args"], result=r["result"],
    )


def walked(filter: JobFilter) -> tuple[list[str], dict[str, Any]]:
    """The filter's states, task and queue as SQL (what a listing walks)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if filter.states:
        clauses.append("w.state IN %(states)s")
        params["states"] = tuple(sorted({JobState(s).value for s in filter.states}))
    if filter.task is not None:
        clauses.append("w.task = %(task)s")
        params["task"] = filter.task
    if filter.queue is not None:
        clauses.append("w.queue = %(queue)s")
        params["queue"] = filter.queue
    return clauses, params


def scanned(filter: JobFilter, params: dict[str, Any], search: str) -> str:
    """The filter's job-by-job predicates (search, creation time) as one SQL condition
    (`search`: the search fragment of queries.sql)."""
    clauses = ["TRUE"]
    if filter.created_after is not None:
        clauses.append("w.created_at >= %(created_after)s")
        params["created_after"] = filter.created_after
    if filter.created_before is not None:
        clauses.append("w.created_at < %(created_before)s")
        params["created_before"] = filter.created_before
    if filter.search:
        params["search"] = filter.search.lower()
        clauses.append(search)
    return " AND ".join(clauses)


def listing(
    table: str, filter: JobFilter, limit: int, cursor: str | None, search: str
) -> list[Statement]:
    """A page of `list_jobs`: one statement, or for a filter that `scans`, the page read
    from a bounded window of the walked rows and the size and end of that window."""
    clauses, params = walked(filter)
    below = seq_cursor(cursor)
    if below is not None:
        clauses.append("w.seq < %(cursor)s")
        params["cursor"] = below
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    params.update(limit=limit + 1, window=records.SCAN_WINDOW)
    if not filter.scans:
        return [(f"SELECT * FROM {table} AS w {where} ORDER BY w.seq DESC LIMIT %(limit)s",
                 params)]
    window = f"SELECT * FROM {table} AS w {where} ORDER BY w.seq DESC LIMIT %(window)s"
    condition = scanned(filter, params, search)
    return [
        (f"SELECT * FROM ({window}) AS w WHERE {condition} ORDER BY w.seq DESC "
         "LIMIT %(limit)s", params),
        (f"SELECT COUNT(*) AS n, MIN(w.seq) AS last FROM ({window}) AS w", params),
    ]


def page(found: Sequence[Sequence[Row]], limit: int) -> JobPage:
    """The page the statements of `listing` read."""
    rows = found[0]
    if len(found) > 1 and len(rows) <= limit and found[1][0]["n"] == records.SCAN_WINDOW:
        # The window was full: more may lie below it.
        return JobPage([record_from_row(r) for r in rows], str(found[1][0]["last"]))
    shown = rows[:limit]
    more = len(rows) > limit
    return JobPage([record_from_row(r) for r in shown],
                   str(shown[-1]["seq"]) if more and shown else None)


def counting(table: str, filter: JobFilter, search: str) -> Statement:
    """`count_jobs`: every row the filter matches (the scanned predicates included)."""
    clauses, params = walked(filter)
    if filter.scans:
        clauses.append(scanned(filter, params, search))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT COUNT(*) AS n FROM {table} AS w {where}", params
