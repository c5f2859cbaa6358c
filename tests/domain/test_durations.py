"""The one duration grammar every window, wait, bake and period is typed in (the README's
``30m``, ``1h``, ``1h30m``, ``1.5m``, ``500ms``): lower-case units, each at most once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain.durations import length_of, parse_duration, parse_time, point_in_time
from modelyard.errors import InvalidInput

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1h30m", timedelta(minutes=90)), ("30m1h", timedelta(minutes=90)),
     ("1.5m", timedelta(seconds=90)), ("500ms", timedelta(milliseconds=500)),
     ("1w2d3h4m5s6ms", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5, milliseconds=6)),
     (" 1h 30m ", timedelta(minutes=90))],
)  # fmt: skip
def test_documented_durations_are_read(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["1h1h", "30m30m", "1s1m1s", "1ms1ms", "0m0m"])
def test_a_unit_given_twice_is_refused_naming_the_text(text: str) -> None:
    with pytest.raises(InvalidInput, match="more than once") as refused:
        parse_duration(text, zero_ok=True)
    assert repr(text) in refused.value.message
    with pytest.raises(InvalidInput, match="more than once"):
        parse_time(text, NOW)


@pytest.mark.parametrize("text", ["5M", "1H", "2D", "1W", "10S", "500MS", "500Ms", "1h30M"])
def test_an_upper_case_unit_is_refused_not_guessed(text: str) -> None:
    # 5M: minutes or months? The README's units are lower-case; m is minutes.
    with pytest.raises(InvalidInput, match="units are lower-case") as refused:
        parse_duration(text)
    assert repr(text) in refused.value.message
    with pytest.raises(InvalidInput, match="units are lower-case"):
        parse_time(text, NOW)


@pytest.mark.parametrize("text", ["\u0661h", "\uff11h", "1_0m", "1.m", ".5m"])
def test_digits_are_ascii_decimals(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a duration") as refused:
        parse_duration(text)
    assert repr(text) in refused.value.message
    with pytest.raises(InvalidInput, match="not a time"):
        parse_time(text, NOW)


def test_the_python_api_takes_a_time_as_the_cli_does() -> None:
    """A datetime (no zone: UTC) or the CLI's text; anything else is refused by name (a
    service once got ``"1h"`` and failed with AttributeError)."""
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert point_in_time("1h", now) == now - timedelta(hours=1)
    assert point_in_time("2026-12-01T07:00", now) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert point_in_time(datetime(2026, 12, 1, 7, 0), now) == datetime(2026, 12, 1, 7, tzinfo=UTC)
    berlin = datetime.fromisoformat("2026-12-01T08:00+01:00")
    assert point_in_time(berlin, now) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"since must be a datetime .* got int 3600"):
        point_in_time(3600, now, "since")
    with pytest.raises(InvalidInput, match="not a time: 'soon'"):
        point_in_time("soon", now, "since")
    with pytest.raises(InvalidInput, match="until: 0001-01-01T00:00:00\\+02:00 is out of range"):
        point_in_time(datetime.fromisoformat("0001-01-01T00:00+02:00"), now, "until")


def test_the_python_api_takes_a_duration_as_the_cli_does() -> None:
    """A timedelta, or the CLI's text (zero too: each caller says what zero means)."""
    assert length_of(timedelta(minutes=5)) == timedelta(minutes=5)
    assert length_of("1h30m") == timedelta(hours=1, minutes=30)
    assert length_of("0s") == timedelta(0)
    with pytest.raises(InvalidInput, match=r"the window must be a timedelta .* got int 300"):
        length_of(300, "the window")
    with pytest.raises(InvalidInput, match="'5 minutes'"):
        length_of("5 minutes", "the window")
