"""Periodic schedules: when a periodic task's ticks fall, and what identifies each tick.

A tick is an instant (epoch seconds) computed from the schedule alone, never from the clock
of the process that asks: a cron expression in its time zone (cronsim: a local time skipped
by a DST jump runs once right after the jump, one repeated by a fall-back runs once, and
sub-hourly schedules run at every real instant that matches), or a multiple of an interval
counted from the Unix epoch. So every scheduler, whatever its clock says, agrees on the
ticks, and `tick_key` turns a tick into the unique key that lets the store take it once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from backburner.errors import ConfigurationError

if TYPE_CHECKING:
    from backburner.task import Task

DEFAULT_CATCH_UP = timedelta(minutes=15)
KEY_MARGIN = 3600.0
"""Seconds a tick's key is held beyond the catch-up window (see `Schedule.key_for`)."""
MAX_CRON_STEPS = 100
"""Bound on the candidates one tick computation looks at (a DST repeat needs a few)."""
MAX_TICKS_PER_ROUND = 1000
"""Most ticks one scheduler round enqueues for one schedule (a 1 s schedule behind by
the whole catch-up window is 900)."""


@dataclass(frozen=True)
class Schedule:
    name: str
    task: Task[Any, Any]
    cron: str | None = None
    every: float | None = None
    """Seconds between ticks, counted from the Unix epoch (so all schedulers agree)."""
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    catch_up: float = DEFAULT_CATCH_UP.total_seconds()
    """A tick older than this (by the store's clock) is never enqueued: after downtime at most
    the latest missed tick runs, and only if it is this recent."""
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"{self.name}: give exactly one of cron= and every=")
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(self.tz))
            except CronSimError as exc:
                raise ConfigurationError(f"{self.name}: bad cron {self.cron!r}: {exc}") from None
        if self.every is not None and not (math.isfinite(self.every) and self.every >= 1):
            raise ConfigurationError(f"{self.name}: every= must be at least 1 second")
        if not (math.isfinite(self.catch_up) and self.catch_up >= 0):
            raise ConfigurationError(f"{self.name}: catch_up must be a duration >= 0")

    # -- ticks -----------------------------------------------------------------------------
    def next_after(self, t: float) -> float:
        """The first tick strictly after `t`."""
        if self.every is not None:
            return (math.floor(t / self.every) + 1) * self.every
        assert self.cron is not None
        # Inside the repeat of a fall-back hour (fold=1) cronsim answers the first pass of
        # the next matching local time, which is before `t`: skip to the first later one.
        for _, candidate in zip(range(MAX_CRON_STEPS),
                                CronSim(self.cron, datetime.fromtimestamp(t, self.tz)),
                                strict=False):
            if (stamp := candidate.timestamp()) > t:
                return stamp
        raise ConfigurationError(f"{self.name}: cron {self.cron!r} has no tick after {t}")

    def latest_at(self, t: float) -> float:
        """The last tick at or before `t`."""
        if self.every is not None:
            return math.floor(t / self.every) * self.every
        assert self.cron is not None
        # Add in UTC, then convert: aware arithmetic in the local zone would reset `fold`
        # and, inside a fall-back hour, land an hour off.
        start = (datetime.fromtimestamp(t, UTC) + timedelta(microseconds=1)).astimezone(self.tz)
        tick = next(CronSim(self.cron, start, reverse=True)).timestamp()
        # From inside a fall-back hour's repeat, cronsim reads local times as their first
        # pass, so its answer can be an earlier tick than the latest: walk forward to it.
        for _ in range(MAX_CRON_STEPS):
            later = self.next_after(tick)
            if later > t:
                return tick
            tick = later
        raise ConfigurationError(f"{self.name}: cron {self.cron!r}: no latest tick at {t}")

    def ticks(self, after: float, until: float) -> Iterator[float]:
        """Ticks in (after, until], in order."""
        tick = self.next_after(after)
        while tick <= until:
            yield tick
            tick = self.next_after(tick)

    def next_runs(self, now: float, count: int = 5) -> list[datetime]:
        found = []
        tick = now
        for _ in range(count):
            tick = self.next_after(tick)
            found.append(datetime.fromtimestamp(tick, self.tz))
        return found

    def tick_key(self, tick: float) -> str:
        """The unique key of one tick: the schedule's name and the tick's instant (UTC)."""
        stamp = datetime.fromtimestamp(tick, UTC).isoformat(timespec="seconds")
        return f"periodic:{self.name}@{stamp}"

    @property
    def key_for(self) -> float:
        """How long a tick's key is held: past the catch-up window, no scheduler tries that
        tick any more, so the key cannot be taken twice. Jobs must be kept at least this long
        (retention), since deleting the job frees its key."""
        return self.catch_up + KEY_MARGIN

    # -- description -----------------------------------------------------------------------
    def describe(self) -> str:
        if self.every is not None:
            return f"every {_duration(self.every)}"
        assert self.cron is not None
        text = CronSim(self.cron, datetime.now(self.tz)).explain()
        return f"{text} ({self.tz.key})"


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def make_schedule(
    task: Task[Any, Any],
    *,
    cron: str | None,
    every: float | timedelta | None,
    tz: str | ZoneInfo,
    name: str | None,
    catch_up: float | timedelta,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> Schedule:
    if isinstance(every, timedelta):
        every = every.total_seconds()
    if isinstance(catch_up, timedelta):
        catch_up = catch_up.total_seconds()
    if isinstance(tz, str):
        try:
            tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"unknown time zone {tz!r}") from None
    # The arguments are checked now, at import, not at the first tick.
    task.signature.encode(tuple(args), dict(kwargs))
    return Schedule(
        name=name or task.name, task=task, cron=cron,
        every=float(every) if every is not None else None, tz=tz,
        catch_up=float(catch_up), args=tuple(args), kwargs=dict(kwargs),
    )
