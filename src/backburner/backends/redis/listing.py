"""Reads across queues: listing jobs newest first, and counts per (queue, state).

Each queue keeps one sorted set per state (id -> seq). A listing merges the sets the filter
selects (every state of every queue by default) by (seq, id) descending, reading each set a
page at a time, then reads the job hashes of the candidates in one pipeline. A task filter, a
search and creation times are checked on the records (no set indexes them), on at most
`records.SCAN_WINDOW` candidates per page: a page may then end short, with a cursor at the
last job read. Cursors are "<seq>:<id>"
of the last job returned: (seq, id) is unique and only grows, so pages neither skip nor repeat
jobs while others are inserted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from backburner.backends import records
from backburner.backends.protocol import JobFilter, JobPage
from backburner.backends.redis.client import Client
from backburner.backends.redis.keys import STATES, Keys
from backburner.backends.redis.rows import record_from_hash
from backburner.errors import ConfigurationError
from backburner.job import JobRecord, JobState

Position = tuple[int, str]
"""(seq, id): the order of a listing, newest first."""


def parse_cursor(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    seq, sep, job_id = cursor.partition(":")
    if not sep or not seq.isdigit():
        raise ConfigurationError(f"invalid cursor {cursor!r}")
    return int(seq), job_id


@dataclass
class _Source:
    """One (queue, state) sorted set, read from the newest down in pages."""

    key: str
    queue: str
    below: Position | None
    buffer: list[Position] = field(default_factory=list)
    done: bool = False


async def list_jobs(
    client: Client, keys: Keys, queues: Sequence[str], filter: JobFilter, limit: int,
    cursor: str | None,
) -> JobPage:
    start = parse_cursor(cursor)
    states = filter.states or STATES
    sources = [
        _Source(keys.queue(q).state(s), q, start) for q in queues for s in states
    ]
    page = limit + 1  # one more than asked tells whether there is a next page
    window = records.SCAN_WINDOW if filter.task is not None or filter.scans else None
    read = 0
    last_read: Position | None = None
    found: list[tuple[Position, JobRecord]] = []
    while len(found) < page:
        if window is not None and read >= window:
            # Read as much as a page may: the next one goes on from the last job read.
            assert last_read is not None
            return JobPage([r for _, r in found], f"{last_read[0]}:{last_read[1]}")
        await _refill(client, [s for s in sources if not s.buffer and not s.done], page)
        wanted = page - len(found) if window is None else min(page - len(found), window - read)
        candidates = _merge(sources, wanted)
        if not candidates:
            break
        async with client.pipeline(transaction=False) as pipe:
            for queue, position in candidates:
                pipe.hgetall(keys.queue(queue).job(position[1]))
            hashes = await pipe.execute()
        read += len(candidates)
        for (_, position), h in zip(candidates, hashes, strict=True):
            last_read = position
            if not h:
                continue  # deleted meanwhile
            record = record_from_hash(h)
            # The record is the truth; the index may be a step behind a concurrent change.
            if filter.states and record.state not in filter.states:
                continue
            if filter.task is not None and record.task != filter.task:
                continue
            if filter.scans and not _scanned_match(filter, h, record):
                continue
            found.append((position, record))
    more = len(found) > limit
    found = found[:limit]
    next_cursor = None
    if more and found:
        seq, job_id = found[-1][0]
        next_cursor = f"{seq}:{job_id}"
    return JobPage([r for _, r in found], next_cursor)


def _scanned_match(filter: JobFilter, h: Mapping[str, str], record: JobRecord) -> bool:
    return records.scanned_match(
        filter, record.created_at.timestamp(), (h.get("args"), h.get("kwargs"), h.get("result")),
        [{"type": e.type, "message": e.message} for e in record.errors],
    )


async def count_jobs(
    client: Client, keys: Keys, queues: Sequence[str], filter: JobFilter
) -> int:
    """From the per-state sets (ZCARD) when only states and queues are asked for; otherwise
    by reading every candidate, a page at a time."""
    if filter.task is None and not filter.scans:
        pairs = [(q, s) for q in queues for s in (filter.states or STATES)]
        async with client.pipeline(transaction=False) as pipe:
            for q, s in pairs:
                pipe.zcard(keys.queue(q).state(s))
            sizes = await pipe.execute()
        return sum(int(n) for n in sizes)
    total = 0
    cursor: str | None = None
    while True:
        page = await list_jobs(client, keys, queues, filter, 1000, cursor)
        total += len(page.jobs)
        if page.next_cursor is None:
            return total
        cursor = page.next_cursor


async def _refill(client: Client, sources: list[_Source], count: int) -> None:
    if not sources:
        return
    async with client.pipeline(transaction=False) as pipe:
        for s in sources:
            top: int | str = "+inf" if s.below is None else s.below[0]
            # Inclusive of the bound's seq: an entry of this set may share it with the cursor
            # (seqs are unique within a queue only), and is kept if its id sorts below.
            pipe.zrevrangebyscore(s.key, top, "-inf", start=0, num=count + 1, withscores=True)
        replies = await pipe.execute()
    for s, reply in zip(sources, replies, strict=True):
        raw = [(int(score), member) for member, score in reply]
        s.done = len(raw) <= count  # fewer than asked for: nothing further down
        # At most one entry sits at or above the bound, so `count` remain when not done.
        s.buffer = [p for p in raw if s.below is None or p < s.below][:count]
        if s.buffer:
            s.below = s.buffer[-1]


def _merge(sources: list[_Source], count: int) -> list[tuple[str, Position]]:
    """Up to `count` (queue, position), newest first, across every source's buffer. Stops
    early when a source that may hold newer entries has run dry (it is refilled first)."""
    out: list[tuple[str, Position]] = []
    while len(out) < count:
        live = [s for s in sources if s.buffer]
        if not live:
            break
        best = max(live, key=lambda s: s.buffer[0])
        position = best.buffer.pop(0)
        out.append((best.queue, position))
        if not best.buffer and not best.done:
            break
    return out


async def counts(
    client: Client, keys: Keys, queues: Sequence[str]
) -> dict[tuple[str, JobState], int]:
    pairs = [(q, s) for q in queues for s in STATES]
    async with client.pipeline(transaction=False) as pipe:
        for q, s in pairs:
            pipe.zcard(keys.queue(q).state(s))
        sizes = await pipe.execute()
    return {pair: int(n) for pair, n in zip(pairs, sizes, strict=True) if n}


async def oldest_pending(
    client: Client, keys: Keys, queues: Sequence[str], now: float
) -> dict[str, float]:
    """`BacklogReads.oldest_pending`: the head of each priority level (score) of a queue's
    `ready` set, as the SQL stores read their claim index (64 levels at most), and the
    run_at of those heads; two round trips per level."""
    ages: dict[str, float] = {}
    for queue in queues:
        queue_keys = keys.queue(queue)
        ready = queue_keys.script_keys[0]
        oldest: float | None = None
        floor = "-inf"
        for _ in range(64):
            head = await client.zrangebyscore(ready, floor, "+inf", start=0, num=1,
                                              withscores=True)
            if not head:
                break
            member, score = head[0][0], head[0][1]
            run_at = await client.hget(queue_keys.job(str(member).split(":", 1)[1]), "run_at")
            if run_at:
                oldest = float(run_at) if oldest is None else min(oldest, float(run_at))
            floor = f"({float(score)!r}"  # the next level: scores strictly above this one
        if oldest is not None:
            ages[queue] = max(0.0, now - oldest)
    return ages
