"""The report compares what ``monitor drift`` compares: a field the variant captures redacted
(its captured values are hashes or nulls) is left out of the report's drift too, and said so,
instead of being tested against the baseline's clear values."""

from __future__ import annotations

from datetime import timedelta

from modelyard.bootstrap import Platform
from tests.services.test_drift_service import NOW, capture, features, platform  # noqa: F401


def test_the_report_leaves_redacted_fields_out_as_drift_does(
    platform: Platform,  # noqa: F811
) -> None:
    capture(platform, "blue", 1, features(3000, 5, shift_a=0.8), NOW - timedelta(minutes=30))
    (checked,) = platform.drift.drift("api", variant="blue", window=timedelta(hours=1), now=NOW)
    data = platform.reports.gather("api", window=timedelta(hours=1), now=NOW)
    (blue,) = [v for v in data.variants if v.name == "blue"]
    assert blue.drift is not None, blue.drift_note
    assert [f.name for f in blue.drift.features] == [f.name for f in checked.features] == ["a", "b"]
    assert [(f.name, f.verdict) for f in blue.drift.features] == [
        (f.name, f.verdict.value) for f in checked.features
    ]
    assert (blue.drift.verdict, blue.drift.drifted_share) == (
        checked.verdict.value,
        checked.drifted_share,
    )
    assert (
        [(i.kind, i.column) for i in blue.drift.issues]
        == [(q.check, q.column) for q in checked.quality]
        == [("redacted", "c")]
    )


def test_the_report_leaves_a_damaged_captured_file_out_as_drift_does(
    platform: Platform,  # noqa: F811
) -> None:
    """The report failed on a damaged captured file while drift went on without it; now both
    leave it out and say so, in the same words."""
    from modelyard.domain.capture import partition
    from modelyard.storage.capture_files import CaptureFolder

    capture(platform, "blue", 1, features(3000, 5, shift_a=0.8), NOW - timedelta(minutes=30))
    damaged = f"{partition('api', NOW - timedelta(minutes=20))}/part-blue-damaged.parquet"
    CaptureFolder(platform.settings.resolved_capture_url).write(damaged, b"not parquet")
    (checked,) = platform.drift.drift("api", variant="blue", window=timedelta(hours=1), now=NOW)
    data = platform.reports.gather("api", window=timedelta(hours=1), now=NOW)
    (blue,) = [v for v in data.variants if v.name == "blue"]
    assert blue.drift is not None, blue.drift_note
    said = [(i.kind, i.message) for i in blue.drift.issues if i.kind == "unreadable_capture"]
    assert said == [(q.check, q.message) for q in checked.quality if q.check == said[0][0]]
    assert damaged in said[0][1]
