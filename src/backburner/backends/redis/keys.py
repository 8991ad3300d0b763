"""Every Redis key and channel name of the Redis backend, and nothing else.

A backend URL's `prefix` (default `backburner`) starts every key, so one server can hold
several independent stores and `destroy()` (or an ACL pattern `~<prefix>:*`) finds them all.
Two kinds of hash tags (the `{...}` part, which alone picks the Redis Cluster slot) split the
keys so that every Lua script only ever touches keys of ONE slot, as Redis Cluster requires:

Per queue, tag `{<prefix>/<queue>}` (the queue name with `%`, `{`, `}` percent-encoded so that
the tag always ends where the queue name does). Every script that changes jobs runs on one
queue, and touches only these keys:

    <prefix>:{<prefix>/<queue>}:job:<id>      hash  the job record: every JobRecord field (see
                                                    `FIELDS` in records.py) plus `seq`
    <prefix>:{<prefix>/<queue>}:ready         zset  pending jobs with lost = 0; score -priority,
                                                    member "<seq>:<id>" (seq zero-padded), so
                                                    ZPOPMIN gives priority desc, then FIFO
    <prefix>:{<prefix>/<queue>}:suspects      zset  pending jobs with lost > 0, same scoring:
                                                    claimed one at a time by idle workers
    <prefix>:{<prefix>/<queue>}:scheduled     zset  id -> run_at (delayed jobs, retries)
    <prefix>:{<prefix>/<queue>}:running       zset  id -> lease_until (what rescue looks at)
    <prefix>:{<prefix>/<queue>}:seq           str   last sequence number given in this queue
    <prefix>:{<prefix>/<queue>}:state:<state> zset  id -> seq, one per JobState: listing by
                                                    state newest first, and counts (ZCARD)
    <prefix>:{<prefix>/<queue>}:held:<worker> set   ids of the jobs a worker holds (heartbeat)
    <prefix>:{<prefix>/<queue>}:control       hash  the queue's controls: paused ('1'/'0') and
                                                    changed_at; read by every claim (absent:
                                                    never paused)
    <prefix>:{<prefix>/<queue>}:finished:<state> zset id -> finished_at, one per terminal
                                                    state: what the retention pruner walks
    <prefix>:{<prefix>/<queue>}:unique:<digest> str id of the job that took a unique key
                                                    last (digest: unique_digest(task, key));
                                                    whether it still holds it is read from
                                                    its record; removed when it ends or is
                                                    deleted; period keys expire (PX)
    <prefix>:{<prefix>/<queue>}:limit:running:<digest> set  ids running in a concurrency group
                                                    (backburner.limits; digest:
                                                    limit_digest(kind, task, key))
    <prefix>:{<prefix>/<queue>}:limit:parked:<digest>  zset pending jobs waiting for a slot of
                                                    the group, scored like `ready`
    <prefix>:{<prefix>/<queue>}:limit:rate:<digest>    zset "<id>:<attempt>" -> start time,
                                                    the starts of a rate's last period
                                                    (expires after a period without one)

Across queues, tag `{<prefix>}`: what must be found without knowing a job's queue.

    <prefix>:{<prefix>}:jobs       hash  job id -> queue: the directory (get/cancel/... by id,
                                         and the all-queues duplicate-id check of insert)
    <prefix>:{<prefix>}:queues     set   every queue name ever used or paused (counts,
                                         listing, rescue, queue states)
    <prefix>:{<prefix>}:workers    hash  worker id -> JSON WorkerInfo (started_at included)
    <prefix>:{<prefix>}:beats      zset  worker id -> last heartbeat
    <prefix>:{<prefix>}:leader     str   id of the worker that runs housekeeping; expires
                                         (PX, the server's clock) unless renewed
    <prefix>:{<prefix>}:layout     str   version of this layout
    <prefix>:{<prefix>}:finished-indexed str  set once the finished indexes hold every
                                         finished job (jobs that ended before they existed
                                         are filed by the first open, see backend.py)
    <prefix>:{<prefix>}:schedules  hash  schedule name -> JSON {paused, changed_at} (what
                                         every scheduler shares; definitions live in code)

Sequence numbers are the server's clock in microseconds, made strictly increasing per queue:
they order jobs across queues for listing (ties between queues are broken by id) and within a
queue for FIFO.

Pub/sub channels (not keys; classic pub/sub is not slotted, a cluster forwards every publish
to every node): `<prefix>:signals` carries wake-ups and cancel requests (what workers
subscribe to), `<prefix>:events` carries job events (result waiters, live streams). See
notifier.py for why sharded pub/sub is not used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from backburner.errors import ConfigurationError
from backburner.job import JobState

LAYOUT_VERSION = 1

STATES: tuple[JobState, ...] = tuple(JobState)
"""Order of the per-state keys in `QueueKeys.script_keys`."""
FINISHED_STATES: tuple[JobState, ...] = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
"""Order of the finished-index keys in `QueueKeys.script_keys`."""

_GLOB = re.compile(r"([\\*?\[\]])")


def check_prefix(prefix: str) -> str:
    if not prefix or "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"invalid Redis key prefix {prefix!r}: it must be non-empty and contain no braces"
        )
    return prefix


def encode_queue(name: str) -> str:
    """Queue names may hold any character; inside a hash tag `}` would end the tag early
    and two queue names could then produce the same key."""
    return name.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


@dataclass(frozen=True)
class QueueKeys:
    prefix: str
    queue: str

    @cached_property
    def base(self) -> str:
        """Every key of this queue starts with this (scripts build job and held keys from it)."""
        return f"{self.prefix}:{{{self.prefix}/{encode_queue(self.queue)}}}:"

    @cached_property
    def script_keys(self) -> tuple[str, ...]:
        """The keys every queue script may touch besides job, held, unique and limit keys.
        Scripts get only the first (the ready set: what routes a call to the queue's slot)
        and name the others from the base themselves, as here (lua/_queue.lua)."""
        b = self.base
        return (
            f"{b}ready", f"{b}suspects", f"{b}scheduled", f"{b}running", f"{b}seq",
            *(f"{b}state:{s.value}" for s in STATES), f"{b}control",
            *(f"{b}finished:{s.value}" for s in FINISHED_STATES),
        )

    @property
    def control(self) -> str:
        return self.script_keys[11]

    def finished(self, state: JobState) -> str:
        return self.script_keys[12 + FINISHED_STATES.index(state)]

    @property
    def suspects(self) -> str:
        return self.script_keys[1]

    def job(self, job_id: str) -> str:
        return f"{self.base}job:{job_id}"

    def state(self, state: JobState) -> str:
        return f"{self.base}state:{state.value}"

    def unique(self, task: str, key: str) -> str:
        return f"{self.base}unique:{unique_digest(task, key)}"


def limit_digest(kind: str, task: str, key: str | None = None) -> str:
    """Names a limit group (kind "task", "key" or "rate") in keys of bounded length."""
    return hashlib.sha256(f"{kind}\0{task}\0{key or ''}".encode()).hexdigest()


def unique_digest(task: str, key: str) -> str:
    """Names a (task, unique key) pair in a key of bounded length, whatever the key holds."""
    return hashlib.sha256(f"{task}\0{key}".encode()).hexdigest()


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = check_prefix(prefix)
        g = f"{prefix}:{{{prefix}}}:"
        self.directory = f"{g}jobs"
        self.queues = f"{g}queues"
        self.workers = f"{g}workers"
        self.beats = f"{g}beats"
        self.leader = f"{g}leader"
        self.layout = f"{g}layout"
        self.schedules = f"{g}schedules"
        self.finished_indexed = f"{g}finished-indexed"
        self.signals_channel = f"{prefix}:signals"
        self.events_channel = f"{prefix}:events"
        self._queues: dict[str, QueueKeys] = {}

    @property
    def global_keys(self) -> tuple[str, ...]:
        """KEYS of every script on the shared keys, in the order lua/_global.lua names them."""
        return (self.directory, self.queues, self.workers, self.beats, self.leader)

    def queue(self, name: str) -> QueueKeys:
        found = self._queues.get(name)
        if found is None:
            found = self._queues[name] = QueueKeys(self.prefix, name)
        return found

    @property
    def scan_pattern(self) -> str:
        """SCAN MATCH pattern covering every key of this prefix (and maybe a few of a prefix
        that extends this one: `owns` tells them apart)."""
        return _GLOB.sub(r"\\\1", f"{self.prefix}:{{{self.prefix}") + "*"

    def owns(self, key: str) -> bool:
        head = f"{self.prefix}:{{{self.prefix}"
        return key.startswith(head) and key[len(head) : len(head) + 1] in ("}", "/")


def hash_tag(key: str) -> str:
    """The part of `key` Redis Cluster hashes (the whole key when it has no tag)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key
