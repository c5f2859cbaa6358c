"""What a drift check says beyond its verdict: why it had none (a check that judged nothing must
not read like a passed one), one verdict for several checks, and a warning for a baseline
smaller than any check can use."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelyard.domain.drift import (
    DriftConfig,
    DriftReport,
    QualityIssue,
    Verdict,
    overall,
    small_baseline,
)

T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)
EMPTY = DriftReport(
    endpoint="api", variant="main", model="churn:1", window_start=T0, window_end=T0,
    baseline_rows=3000, current_rows=0, features=(), predictions=(), quality=(),
    verdict=Verdict.INSUFFICIENT_DATA, drifted_share=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, "no rows in the window"),
        ({"window_start": None, "window_end": None}, "no rows in the data"),
        (
            {"quality": (QualityIssue("no_baseline", "", "churn:1 has no baseline"),)},
            "no baseline",
        ),
        # The cause is the baseline, however many rows the window holds (the CLI blamed the
        # window for it).
        ({"baseline_rows": 3, "current_rows": 3000}, "the baseline holds 3 row(s), fewer than 100"),
        ({"current_rows": 40}, "40 row(s) in the window, fewer than 100"),
        (
            {"current_rows": 40, "config": DriftConfig(min_rows=20)},
            "no feature has 20 present values on both sides",
        ),
    ],
)
def test_a_report_without_a_verdict_says_why(changes: dict[str, object], reason: str) -> None:
    assert replace(EMPTY, **changes).no_verdict_reason() == reason  # type: ignore[arg-type]


def test_a_report_with_a_verdict_needs_no_reason() -> None:
    judged = replace(EMPTY, current_rows=3000, verdict=Verdict.NO_DRIFT, drifted_share=0.0)
    assert judged.no_verdict_reason() is None


def test_one_verdict_for_several_checks() -> None:
    drift, calm, unknown = Verdict.DRIFT, Verdict.NO_DRIFT, Verdict.INSUFFICIENT_DATA
    assert overall([calm, drift, unknown]) is drift
    assert overall([calm, unknown]) is unknown, "a check without data never passes"
    assert overall([calm, calm]) is calm
    assert overall([]) is unknown


def test_a_baseline_smaller_than_min_rows_gets_a_warning() -> None:
    assert small_baseline(99) is not None and "99 row(s)" in str(small_baseline(99))
    assert small_baseline(100) is None
    assert small_baseline(300, DriftConfig(min_rows=500)) is not None
    assert small_baseline(30, DriftConfig(min_rows=20)) is None
