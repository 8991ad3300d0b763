"""Schedules: tick arithmetic (property tests over cron expressions, time zones and DST) and
which ticks a scheduler enqueues (catch-up, pause, resume)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backburner import Backburner, ConfigurationError
from backburner.backends.protocol import ScheduleState
from backburner.schedule import Schedule
from backburner.scheduler import due_ticks

# Zones with DST in both hemispheres, a half-hour DST (Lord Howe), none, and odd offsets.
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Sydney",
         "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata", "Pacific/Chatham"]


class _Task:
    name = "t"


def schedule(cron: str | None = None, every: float | None = None, tz: str = "UTC",
             catch_up: float = 900.0) -> Schedule:
    return Schedule("s", _Task(), cron=cron, every=every, tz=ZoneInfo(tz),  # type: ignore[arg-type]
                    catch_up=catch_up)


minutes = st.one_of(st.just("*"), st.integers(0, 59).map(str),
                    st.sampled_from(["*/5", "*/15", "0,30", "10-20"]))
hours = st.one_of(st.just("*"), st.integers(0, 23).map(str),
                  st.sampled_from(["*/2", "1-3", "2", "0,12", "9-17"]))
days = st.sampled_from(["*", "1", "15", "1-7", "*/2"])
months = st.sampled_from(["*", "*", "3", "10", "3,10,11", "4"])
weekdays = st.sampled_from(["*", "*", "0", "1-5", "6,0"])
crons = st.builds(lambda *f: " ".join(f), minutes, hours, days, months, weekdays)
# Instants around the DST transitions of 2026 in the zones above, and anywhere.
starts = st.one_of(
    st.sampled_from([datetime(2026, m, d, tzinfo=UTC) for m, d in
                     ((3, 7), (3, 28), (4, 4), (9, 26), (10, 3), (10, 24), (10, 31))]),
    st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
).map(lambda d: d.timestamp())


@settings(max_examples=300, deadline=None)
@given(crons, st.sampled_from(ZONES), starts)
# Found by hypothesis: from inside Sydney's repeated 02:00-03:00 hour, cronsim answered a
# tick before the start.
@example("0,30 1-3 * * 0", "Australia/Sydney", 1772841600.0)
def test_cron_ticks_strictly_increase_and_none_is_skipped(cron: str, tz: str, t: float) -> None:
    s = schedule(cron=cron, tz=tz)
    ticks = list(_take(s, t, 40))
    assert all(a < b for a, b in itertools.pairwise(ticks))  # never doubled
    assert t < ticks[0]
    for a, b in itertools.pairwise(ticks):
        # Nothing in between (none skipped): from anywhere in (a, b) the next tick is b.
        mid = (a + b) / 2
        assert s.next_after(mid) == b and s.latest_at(mid) == a
        assert s.latest_at(b) == b
        local = datetime.fromtimestamp(b, ZoneInfo(tz))
        # Every tick is a real instant that the expression matches (cronsim's rule for a
        # time a DST jump skips: right after the jump, on the hour or half hour).
        assert local.second == 0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 59), st.integers(0, 23), st.sampled_from(ZONES), starts)
def test_a_daily_cron_runs_once_per_local_day_across_dst(
    minute: int, hour: int, tz: str, t: float
) -> None:
    s = schedule(cron=f"{minute} {hour} * * *", tz=tz)
    ticks = list(_take(s, t, 60))
    dates = [datetime.fromtimestamp(x, ZoneInfo(tz)).date() for x in ticks]
    assert len(set(dates)) == len(dates)  # a fall-back repeat of the hour runs once
    assert all((b - a).days == 1 for a, b in itertools.pairwise(dates))  # no day skipped


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 86400 * 2), st.floats(0, 4e9))
def test_interval_ticks_are_multiples_from_the_epoch(every: int, t: float) -> None:
    s = schedule(every=float(every))
    nxt = s.next_after(t)
    assert nxt > t and nxt - every <= t and nxt % every == 0
    assert s.latest_at(t) <= t < s.latest_at(t) + every


def _take(s: Schedule, t: float, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = s.next_after(t)
        out.append(t)
    return out


def test_tick_keys_name_the_schedule_and_the_instant() -> None:
    s = schedule(cron="0 9 * * *", tz="Europe/Paris")
    tick = s.next_after(datetime(2026, 7, 1, tzinfo=UTC).timestamp())
    assert s.tick_key(tick) == "periodic:s@2026-07-01T07:00:00+00:00"
    assert s.describe() == "At 09:00 every day (Europe/Paris)"
    assert schedule(every=1).describe() == "every 1 second"
    assert schedule(every=7200).describe() == "every 2 hours"


def test_first_round_catches_up_at_most_the_latest_tick_within_the_window() -> None:
    s = schedule(every=60, catch_up=300)
    assert due_ticks(s, 1000.0, None, None) == [960.0]
    late = schedule(every=3600, catch_up=300)
    assert due_ticks(late, 3600 * 5 + 301, None, None) == []  # too old: skipped
    assert due_ticks(late, 3600 * 5 + 299, None, None) == [3600 * 5]


def test_later_rounds_take_every_tick_since_the_last_round() -> None:
    s = schedule(every=1, catch_up=300)
    assert due_ticks(s, 1010.5, 1004.2, None) == [1005.0, 1006.0, 1007.0, 1008.0, 1009.0,
                                                   1010.0]
    assert due_ticks(s, 1010.5, 1010.0, None) == []  # 1010 was taken by the last round
    assert due_ticks(s, 5000.0, 1000.0, None)[0] == 4700.0  # never older than the window


def test_paused_and_resumed_schedules() -> None:
    s = schedule(every=1, catch_up=300)
    assert due_ticks(s, 1010.5, 1000.0, ScheduleState(True, 900.0)) == []
    resumed = ScheduleState(False, 1008.5)
    assert due_ticks(s, 1010.5, 1000.0, resumed) == [1009.0, 1010.0]
    assert due_ticks(s, 1010.5, None, ScheduleState(False, 1010.2)) == []


def test_periodic_decorator_checks_its_arguments() -> None:
    app = Backburner("memory://")

    @app.task
    async def report(day: str = "today") -> None: ...

    bad: list[dict[str, Any]] = [
        {}, {"cron": "0 9 * * *", "every": 5}, {"cron": "61 * * * *"}, {"every": 0.5},
        {"cron": "0 9 * * *", "tz": "Mars/Olympus"}, {"every": 5, "kwargs": {"nope": 1}},
        {"every": 5, "catch_up": -1},
    ]
    for options in bad:
        with pytest.raises((ConfigurationError, Exception)):
            app.periodic(**options)(report)
    app.periodic(every=timedelta(seconds=5), kwargs={"day": "x"})(report)
    with pytest.raises(ConfigurationError):
        app.periodic(every=5)(report)  # one name, one schedule
    app.periodic(every=5, name="report-fast")(report)
    assert set(app.periodic_schedules) == {report.name, "report-fast"}
    other = Backburner("memory://")
    with pytest.raises(ConfigurationError):
        other.periodic(every=5)(report)
