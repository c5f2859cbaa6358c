"""Cron in a time zone (services/ticks.py): wall-clock ticks handed out as UTC instants, each
wall time once across daylight saving changes; a skipped wall time ticks when the gap ends;
bad expressions and zones are refused with the value named."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from modelyard.errors import InvalidInput
from modelyard.services.ticks import (
    check_timezone,
    count_ticks,
    cron_latest,
    cron_next,
    validate_cron,
    validate_timezone,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def walk(expression: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    ticks, now = [], start
    for _ in range(count):
        now = cron_next(expression, zone, now)
        ticks.append(now)
    return ticks


def test_monday_six_in_paris_follows_summer_time() -> None:
    # 2026-03-29 is the last Sunday of March: Paris goes from UTC+1 to UTC+2.
    ticks = walk("0 6 * * 1", PARIS, utc(2026, 3, 20), 3)
    assert ticks == [utc(2026, 3, 23, 5), utc(2026, 3, 30, 4), utc(2026, 4, 6, 4)]
    assert [t.astimezone(PARIS).hour for t in ticks] == [6, 6, 6]
    assert cron_latest("0 6 * * 1", PARIS, utc(2026, 3, 30, 3, 59)) == utc(2026, 3, 23, 5)
    assert cron_latest("0 6 * * 1", PARIS, utc(2026, 3, 30, 4)) == utc(2026, 3, 30, 4)


def test_a_skipped_wall_time_ticks_when_the_gap_ends() -> None:
    # 02:00-03:00 does not exist in Paris on 2026-03-29: 02:30 ticks at 03:00 CEST (01:00Z).
    assert walk("30 2 * * *", PARIS, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0, 30),
    ]
    # Every quarter of the missing hour: one tick, at the end of the gap.
    assert walk("*/15 2 * * *", PARIS, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0),
    ]
    assert cron_latest("30 2 * * *", PARIS, utc(2026, 3, 29, 1, 5)) == utc(2026, 3, 29, 1)


def test_a_repeated_wall_time_ticks_once_at_its_first_occurrence() -> None:
    # Paris goes back from 03:00 CEST to 02:00 CET on 2026-10-25: 02:30 happens twice.
    assert walk("30 2 * * *", PARIS, utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 26, 1, 30),  # 02:30 CET the next day, not 02:30 CET on the 25th
    ]
    # An hourly expression: each wall-clock hour once, so the repeated hour is not run again.
    hourly = walk("0 * * * *", PARIS, utc(2026, 10, 24, 23, 30), 3)
    assert hourly == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 2), utc(2026, 10, 25, 3)]


def test_latest_tick_in_the_second_pass_of_a_repeated_hour() -> None:
    # At 02:50 CET (01:50Z), the second 02:50: 02:45 ticked in the first pass (00:45Z).
    assert cron_latest("45 2 * * *", PARIS, utc(2026, 10, 25, 1, 50)) == utc(2026, 10, 25, 0, 45)
    # ... and "*/10" last ticked at 02:50 CEST (00:50Z); the next is 03:00 CET (02:00Z).
    assert cron_latest("*/10 * * * *", PARIS, utc(2026, 10, 25, 1, 55)) == utc(2026, 10, 25, 0, 50)
    assert cron_next("*/10 * * * *", PARIS, utc(2026, 10, 25, 1, 55)) == utc(2026, 10, 25, 2)


def test_ticks_never_go_backwards_over_a_year() -> None:
    # All three change their clocks early on a Sunday (Lord Howe by 30 minutes).
    expression = "*/20 0-3 * * 0"
    for zone in (PARIS, NEW_YORK, ZoneInfo("Australia/Lord_Howe")):
        ticks = walk(expression, zone, utc(2026, 1, 1), 12 * 53)
        assert ticks[-1].year == 2027, "a whole year walked"
        assert all(a < b for a, b in itertools.pairwise(ticks)), zone.key
        # Each tick is its own latest tick, and a second later too.
        for tick in ticks[::7]:
            assert cron_latest(expression, zone, tick) == tick
            assert cron_latest(expression, zone, tick + timedelta(seconds=1)) == tick


def test_utc_zone_gives_the_plain_utc_ticks() -> None:
    zone = validate_timezone("UTC")
    assert walk("0 6 * * 1", zone, utc(2026, 3, 20), 2) == [
        utc(2026, 3, 23, 6),
        utc(2026, 3, 30, 6),
    ]


def test_counting_ticks_between_two_instants() -> None:
    # (Mar 28 12:00Z, Mar 30 12:00Z): the gap tick on the 29th, and four on the 30th.
    assert count_ticks("*/15 2 * * *", PARIS, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)) == 5
    assert count_ticks("0 6 * * *", PARIS, utc(2026, 1, 1), utc(2027, 1, 1), limit=100) == 100
    # Both ends excluded.
    assert count_ticks("0 6 * * *", PARIS, utc(2026, 1, 1, 5), utc(2026, 1, 3, 5)) == 1


def test_a_count_that_stopped_at_its_limit_says_so() -> None:
    # Two days of a per-minute cron missed: 2,879 ticks, shown as "1000 earlier tick(s)".
    from modelyard.domain.schedules import ScheduleRun, ScheduleRunStatus

    missed = count_ticks("* * * * *", PARIS, utc(2026, 1, 1), utc(2026, 1, 3))
    at = utc(2026, 1, 3)
    run = ScheduleRun("s", at, ScheduleRunStatus.SUBMITTED, at, "h:1", missed=missed, late=True)
    assert run.missed_text == "1000 or more earlier tick(s) missed"
    assert (run.to_dict()["missed"], run.to_dict()["missed_capped"]) == (1000, True)  # --json
    few = ScheduleRun("s", at, ScheduleRunStatus.SKIPPED, at, "h:1", missed=3)
    assert few.missed_text == "3 earlier tick(s) missed"
    assert few.to_dict()["missed_capped"] is False


@pytest.mark.parametrize(
    "expression",
    ["", "0 6 * *", "0 6 * * 1 2026", "61 * * * *", "0 6 * * funday", "0 25 * * *"],
    ids=["empty", "four-fields", "six-fields", "minute-61", "bad-day", "hour-25"],
)
def test_malformed_cron_is_refused_naming_it_and_the_zone(expression: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_cron(expression, "Europe/Paris")
    assert repr(expression) in info.value.message
    assert "in Europe/Paris" in info.value.message


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("61 * * * *", "its minute field '61' is not valid (0-59)"),
        ("*/0 * * * *", "its minute field '*/0' is not valid (0-59)"),
        ("0 25 * * *", "its hour field '25' is not valid (0-23)"),
        ("0 6 32 * *", "its day-of-month field '32' is not valid (1-31)"),
        ("0 6 * 13 *", "its month field '13' is not valid (1-12 or JAN-DEC)"),
        ("0 6 * * 8", "its day-of-week field '8' is not valid (0-7 or SUN-SAT, 0 and 7: Sunday)"),
        ("0 6 * * funday", "its day-of-week field 'funday' is not valid"),
    ],
)
def test_a_bad_field_of_five_is_named(expression: str, named: str) -> None:
    # "use five fields" was all it said of '61 * * * *', which has five.
    with pytest.raises(InvalidInput) as info:
        validate_cron(expression)
    assert named in info.value.message
    assert "use five fields" not in info.value.message


@pytest.mark.parametrize("expression", ["R 6 * * *", "H(0-29) * * * *", "0 h * * *"])
def test_random_and_hashed_values_are_refused(expression: str) -> None:
    # croniter gives them a value of its own in each process: schedulers would disagree.
    with pytest.raises(InvalidInput, match="R and H"):
        validate_cron(expression)
    assert validate_cron("0 6 * MAR THU") == "0 6 * MAR THU", "names holding R or H are fine"


def test_cron_that_never_ticks_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no date ever matches"):
        validate_cron("0 6 30 2 *")
    assert validate_cron("0  6 29 2 *") == "0 6 29 2 *", "leap days exist"


@pytest.mark.parametrize(
    "name",
    ["Europe/Pariss", "Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "UTC+2"],
    ids=["typo", "unknown", "empty", "relative-path", "absolute-path", "offset"],
)
def test_unknown_time_zone_is_refused_naming_it(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_timezone(name)
    assert f"unknown time zone {name!r}" in info.value.message
    assert "Europe/Paris" in info.value.message


@pytest.mark.parametrize(
    "name",
    ["localtime", "posixrules", "right/Europe/Paris", "posix/Europe/Paris"],
    ids=["this-machines-zone", "posixrules", "leap-second-copy", "posix-copy"],
)
def test_a_zone_file_that_is_no_iana_zone_is_refused_for_a_new_schedule(name: str) -> None:
    # The zone database's own files load as zones where they exist: "localtime" is the
    # zone of the machine that reads it (two schedulers in two zones ran each tick twice, at
    # two instants), and the "right/" copies count leap seconds, which zoneinfo misreads
    # (6:00 in right/Europe/Paris ticked at 04:00 UTC in winter).
    with pytest.raises(InvalidInput) as info:
        check_timezone(name)
    assert f"{name!r} is not an IANA time zone" in info.value.message
    assert "Europe/Paris" in info.value.message
    assert check_timezone("Europe/Paris") == PARIS
    assert check_timezone("Etc/UTC").key == "Etc/UTC"


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("5-2 * * * *", "minute field's range '5-2' runs from high to low"),
        ("0 22-3 * * *", "write 22-23,0-3"),
        ("0 0 * DEC-JAN *", "write 12,1"),
        ("0 0 * * FRI-MON", "write 5-6,0-1"),
        ("0,10-5/2 * * * *", "write 10-59/2,0-5/2"),
        ("0 22-3/2 * * *", "write 22-23/2,0-3/2"),
        ("0 23-3/2 * * *", "write 23,1-3/2"),  # the step goes on across the wrap: 23, 1, 3
    ],
)
def test_a_range_from_high_to_low_is_refused_naming_how_to_wrap_it(
    expression: str, said: str
) -> None:
    # croniter read '5-2' as wrapping round (minutes 5-59 and 0-2); cron refuses it as the
    # typo it usually is, and so is it here.
    with pytest.raises(InvalidInput) as info:
        validate_cron(expression)
    assert said in info.value.message
    assert validate_cron("0 9-17 * * MON-FRI") == "0 9-17 * * MON-FRI"
    assert validate_cron("0 0 * * 5-7") == "0 0 * * 5-7", "7 is Sunday too"
    for sunday_last in ("0 0 * * MON-SUN", "0 0 * * SAT-SUN", "0 0 * * 6-0"):  # 0 is 7 here
        assert validate_cron(sunday_last) == sunday_last
