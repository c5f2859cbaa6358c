"""Capture settings and the durations commands take: what parses, what is refused and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelyard.domain import CaptureConfig, RedactedField, Redaction, Variant
from modelyard.domain.capture import output_columns, partition, partition_hour, window_folders
from modelyard.domain.durations import parse_duration, parse_time
from modelyard.errors import InvalidInput


def test_capture_config_parses_and_survives_its_json_form() -> None:
    config = CaptureConfig.parse("12.5%", ["ssn", "email:drop", "a:b:hash"])
    assert config.percent == 12.5
    assert config.redact == (
        RedactedField("ssn", Redaction.HASH),
        RedactedField("email", Redaction.DROP),
        RedactedField("a:b", Redaction.HASH),
    )
    assert config.mode("email") is Redaction.DROP and config.mode("age") is None
    assert CaptureConfig.from_dict(config.to_dict()) == config
    variant = Variant("blue", "churn", 1, 1.0, capture=config)
    assert Variant.from_dict(variant.to_dict()) == variant
    old = {k: v for k, v in variant.to_dict().items() if k != "capture"}  # a config before 0008
    assert Variant.from_dict(old).capture == CaptureConfig()
    assert config.describe() == "12.5% of requests, redacting ssn (hash), email (drop), a:b (hash)"
    assert CaptureConfig().describe() == "off"


@pytest.mark.parametrize(
    ("percent", "redact", "problem"),
    [
        ("150", (), "0..100"),
        ("-1", (), "0..100"),
        ("nan", (), "0..100"),
        ("ten", (), "a number from 0 to 100"),
        ("", (), "a number from 0 to 100"),
        ("\u0661\u0660", (), "a number from 0 to 100, got '\u0661\u0660'"),
        ("1_0", (), "a number from 0 to 100, got '1_0'"),
        ("\u00a010%", (), "a number from 0 to 100"),
        ("5", ("ssn:erase",), "unknown redaction 'erase'"),
        ("5", (":drop",), "has no name"),
        ("5", ("ssn", "ssn:drop"), "'ssn' is given twice"),
    ],
)
def test_bad_capture_settings_are_refused_naming_the_problem(
    percent: str, redact: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        CaptureConfig.parse(percent, redact)


def test_layout_names() -> None:
    when = datetime(2026, 1, 31, 7, 59, tzinfo=UTC)
    assert partition("api", when) == "api/date=2026-01-31/hour=07"
    assert partition_hour("x/api/date=2026-01-31/hour=07/part-1.parquet") == when.replace(minute=0)
    assert partition_hour("api/somewhere/else.parquet") is None
    assert output_columns(1) == ["output.prediction"]
    assert output_columns(3) == ["output.0", "output.1", "output.2"]


def test_window_folders_end_at_the_last_hour_a_datetime_holds() -> None:
    last = datetime(9999, 12, 31, 22, 30, tzinfo=UTC)
    assert window_folders("api", [(last, datetime.max.replace(tzinfo=UTC))]) == [
        "api/date=9999-12-31/hour=22",
        "api/date=9999-12-31/hour=23",
    ]


def test_durations_and_times() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_time("1h", now) == now - timedelta(hours=1)
    assert parse_time("2026-01-31T07:00") == datetime(2026, 1, 31, 7, tzinfo=UTC)
    assert parse_time("2026-01-31T09:00+02:00") == datetime(2026, 1, 31, 7, tzinfo=UTC)
    for bad in ("", "1x", "h", "0m", "-1h", "1h30"):
        with pytest.raises(InvalidInput, match="duration"):
            parse_duration(bad)
    # Zero where the caller says what it means (a deployment's bake: none).
    for zero in ("0", "0s", "0h", "0m0s"):
        assert parse_duration(zero, zero_ok=True) == timedelta(0)
    for bad in ("", "1x", "-1h", "00"):
        with pytest.raises(InvalidInput, match="not a duration"):
            parse_duration(bad, zero_ok=True)
    with pytest.raises(InvalidInput, match="not a time: 'yesterday'"):
        parse_time("yesterday")
    # Ten years at most: longer ones overflowed timedelta or the date before now (tracebacks).
    assert parse_duration("3660d") == timedelta(days=3660)
    assert parse_time("3660d", now) == now - timedelta(days=3660)
    for huge in ("3661d", "10000000d", "99999999999d", "9" * 400 + "w"):
        with pytest.raises(InvalidInput, match="at most ten years"):
            parse_duration(huge)
        with pytest.raises(InvalidInput, match="at most ten years"):
            parse_time(huge, now)
    with pytest.raises(InvalidInput, match="longer than zero"):
        parse_time("0s", now)
    for edge in ("0001-01-01T00:00+02:00", "9999-12-31T23:00-05:00"):
        with pytest.raises(InvalidInput, match="out of range in UTC"):
            parse_time(edge)
