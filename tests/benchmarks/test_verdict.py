"""The benchmarks' verdict on a cost target (``benchmarks/verdict.py``): the median's interval
from the rounds' order statistics, checked against the binomial coverage worked out by hand,
and a verdict that says met or missed only when the whole interval agrees."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "verdict.py"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("benchmark_verdict", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("benchmark_verdict", module)
    spec.loader.exec_module(module)
    return module


verdict = _load()


def test_five_rounds_give_the_lowest_to_the_highest_at_94_percent() -> None:
    found = verdict.median_interval([0.05, 0.01, 0.09, 0.03, 0.07])
    assert (found["low"], found["high"], found["n"]) == (0.01, 0.09, 5)
    assert found["confidence"] == pytest.approx(1 - 2 / 32)  # 2 P(B = 0), B ~ Bin(5, 1/2)


def test_more_rounds_cut_the_interval_inwards_as_the_binomial_allows() -> None:
    # n = 20: P(B <= 5) = 0.0207, so k = 6 gives 1 - 2 * 0.0207 = 95.9 %; k = 7 would give
    # 1 - 2 * P(B <= 6) = 88.5 %, under 90 %: the 6th lowest and 6th highest.
    values = [float(v) for v in range(20)]
    found = verdict.median_interval(values[::-1])
    assert (found["low"], found["high"]) == (5.0, 14.0)
    assert found["confidence"] == pytest.approx(1 - 2 * 21700 / 2**20)


def test_fewer_than_five_rounds_cannot_reach_90_percent() -> None:
    found = verdict.median_interval([0.02, 0.04, 0.03])
    assert (found["low"], found["high"]) == (0.02, 0.04)
    assert found["confidence"] == pytest.approx(0.75)
    assert verdict.verdict([0.01, 0.01, 0.01], 0.05)["verdict"] == "undecided"
    with pytest.raises(ValueError, match="no values"):
        verdict.median_interval([])


@pytest.mark.parametrize(
    ("costs", "reading"),
    [
        ([0.01, 0.02, 0.03, 0.04, 0.05], "met"),  # the whole interval at or under 5 %
        ([0.051, 0.06, 0.07, 0.08, 0.09], "missed"),  # all above
        ([0.01, 0.02, 0.03, 0.04, 0.06], "undecided"),  # the median under, the interval across
        ([0.04, 0.06, 0.07, 0.08, 0.09], "undecided"),  # the median over, the interval across
    ],
)
def test_the_verdict_follows_the_whole_interval_not_the_median(
    costs: list[float], reading: str
) -> None:
    found = verdict.verdict(costs, 0.05)
    assert found["verdict"] == reading
    assert found["cost"] == sorted(costs)[2]
    assert found["cost_interval"] == [min(costs), max(costs)]
    assert reading in verdict.describe(found)
