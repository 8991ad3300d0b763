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
DAY = 86400.0
SHIFT = timedelta(hours=3)
"""More than any change of a zone's UTC offset: how far around a wall time to look."""
MAX_CRON_STEPS = 2000
"""Bound on the wall times one tick computation looks at (near an offset change a
per-minute schedule needs about 2 x 180)."""
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
        # cronsim walks local wall time, which it gets wrong across a change of UTC offset
        # (from Lord Howe's 00:55, before a half-hour jump, it answered 00:30 of the next day,
        # not 00:00). So it walks naive wall time here, where it is exact, and `_instants`
        # maps each matching wall time to real instants by our DST rule.
        wall = _wall(self.tz, t)
        for candidate in _take(CronSim(self.cron, wall)):
            later = [x for x in self._instants(candidate) if x > t]
            if later:
                # Exact unless the offset changed on the way (then wall time jumped).
                if _last_offset_change(self.tz, t, later[0]) is None:
                    return later[0]
                break
        # Around an offset change: every wall time within SHIFT of t's may have an instant
        # after t; take the earliest such instant.
        best: float | None = None
        for candidate in _take(CronSim(self.cron, wall - SHIFT)):
            if best is not None and candidate > _wall(self.tz, best) + SHIFT:
                return best
            for x in self._instants(candidate):
                if x > t and (best is None or x < best):
                    best = x
        raise ConfigurationError(f"{self.name}: cron {self.cron!r}: no tick after {t}")

    def latest_at(self, t: float) -> float:
        """The last tick at or before `t`."""
        if self.every is not None:
            return math.floor(t / self.every) * self.every
        assert self.cron is not None
        # As next_after, backwards. A microsecond makes cronsim include `wall` itself.
        wall = _wall(self.tz, t)
        for candidate in _take(CronSim(self.cron, wall + timedelta(microseconds=1),
                                       reverse=True)):
            earlier = [x for x in self._instants(candidate) if x <= t]
            if earlier:
                if _last_offset_change(self.tz, earlier[-1], t) is None:
                    return earlier[-1]
                break
        best: float | None = None
        for candidate in _take(CronSim(self.cron, wall + SHIFT, reverse=True)):
            if best is not None and candidate < _wall(self.tz, best) - SHIFT:
                return best
            for x in self._instants(candidate):
                if x <= t and (best is None or x > best):
                    best = x
        raise ConfigurationError(f"{self.name}: cron {self.cron!r}: no tick at or before {t}")

    def _instants(self, wall: datetime) -> list[float]:
        """The real instants, in order, at which the local wall time `wall` (naive) is a
        tick. Debian cron's rule (cronsim's) for an expression with fixed minutes and hours:
        a wall time that a fall-back repeats runs once, on its first pass, and one that a
        spring-forward skips runs once, right at the jump. Otherwise (sub-hourly schedules)
        every real instant showing that wall time runs, and a skipped one does not."""
        first = wall.replace(tzinfo=self.tz, fold=0).timestamp()
        second = wall.replace(tzinfo=self.tz, fold=1).timestamp()
        real = [x for x in sorted({first, second}) if _wall(self.tz, x) == wall]
        if len(real) == 2 and self._debian:
            return real[:1]
        if real or not self._debian:
            return real
        # Skipped: fold=1 reads it with the new offset (before the jump), fold=0 with the
        # old one (after it): the jump lies in between.
        jump = _last_offset_change(self.tz, min(first, second), max(first, second))
        return [] if jump is None else [jump]

    @property
    def _debian(self) -> bool:
        assert self.cron is not None
        fields = self.cron.split()
        return len(fields) == 5 and not fields[0].startswith("*") \
            and not fields[1].startswith("*")

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


def _last_offset_change(tz: ZoneInfo, start: float, end: float) -> float | None:
    """The first instant (to the second) of the last UTC-offset period of `tz` that began
    in (start, end]; None when the offset is the same all along. Zones change offset at most
    a few times a year, so stepping back by a day finds the last change."""
    offset = _offset(tz, end)
    if _offset(tz, start) == offset and end - start <= DAY:
        return None
    low = max(start, end - DAY)
    while low > start and _offset(tz, low) == offset:
        low = max(start, low - DAY)
    if _offset(tz, low) == offset:
        return None
    # _offset(low) differs, _offset(end) is the final one: bisect to the second (zones
    # change offset on whole seconds).
    low_s, high_s = math.floor(low), math.ceil(end)
    while high_s - low_s > 1:
        mid = (low_s + high_s) // 2
        if _offset(tz, mid) == offset:
            high_s = mid
        else:
            low_s = mid
    return float(high_s)


def _wall(tz: ZoneInfo, t: float) -> datetime:
    """The local wall time of instant `t` in `tz`, naive."""
    return datetime.fromtimestamp(t, tz).replace(tzinfo=None)


def _take(cron: CronSim) -> Iterator[datetime]:
    """At most MAX_CRON_STEPS answers (cronsim itself stops after 50 years of none)."""
    for _, candidate in zip(range(MAX_CRON_STEPS), cron, strict=False):
        yield candidate


def _offset(tz: ZoneInfo, t: float) -> timedelta | None:
    return datetime.fromtimestamp(t, tz).utcoffset()


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
