"""Unique (idempotent) jobs: the key a job holds and for how long.

A job enqueued with a unique key is stored only if no *live* job of the same queue and task
holds that key; otherwise the enqueue answers the holder's id (a duplicate is never an error
and never a second job). The store decides, atomically, inside its insert: the core only
derives the key and says how long it is held.

Live means, by the holder's own scope:

- `QUEUED`: the holder has not started yet (pending or scheduled, never claimed);
- `ACTIVE` (the default): the holder is not terminal (pending, scheduled or running, retries
  in backoff included);
- `PERIOD`: until `unique_for` seconds after the holder's enqueue, by the store's clock,
  whatever its state (the window periodic ticks use, so a finished tick is not enqueued
  again by a late scheduler).

A deleted holder holds nothing. A job put back by `retry()` takes its key again only if no
other live job took it meanwhile; otherwise the retry still succeeds and the job runs
without the key (it never takes it back by itself), so one key never has two live holders
and a duplicate enqueue answers the live holder. The store decides this inside the retry,
atomically with concurrent inserts: `retry()` never fails over a key.

A claim ends a queued holder's hold (its attempt is no longer 0): a duplicate of a pending
or scheduled holder answers it, one of a running holder is a new job. Redis keeps the key's
pointer until the holder ends and judges it from the record at the next insert, with the
same answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import orjson

from backburner.errors import ConfigurationError

MAX_KEY_LENGTH = 500


class UniqueScope(StrEnum):
    QUEUED = "queued"
    """While the holder waits to start (pending or scheduled, never claimed)."""
    ACTIVE = "active"
    """While the holder is pending, scheduled or running."""
    PERIOD = "period"
    """For `unique_for` seconds after the holder's enqueue, whatever its state."""


def derived_key(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The key of `unique=True`: a hash of the stored (JSON, validated) arguments. Keyword
    arguments are stored by name and sorted here, so equal calls give equal keys however
    they were spelled. Task and queue are part of the uniqueness already."""
    canonical = orjson.dumps([list(args), dict(kwargs)], option=orjson.OPT_SORT_KEYS)
    return "args:" + hashlib.sha256(canonical).hexdigest()


def check_key(task: str, key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ConfigurationError(
            f"{task}: unique_key must be a non-empty string of <= {MAX_KEY_LENGTH} chars"
        )
    return key


def check_scope(task: str, scope: Any) -> UniqueScope:
    try:
        found = UniqueScope(scope)
    except ValueError:
        raise ConfigurationError(
            f"{task}: unique_scope must be 'queued' or 'active' (or give unique_for=)"
        ) from None
    if found is UniqueScope.PERIOD:
        raise ConfigurationError(f"{task}: give unique_for= for a period scope")
    return found
