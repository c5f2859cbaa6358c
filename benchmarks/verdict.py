"""Whether a cost measured over alternating rounds meets its target, given the rounds' spread.

A round's cost (one server against the plain one, measured back to back) varies by several
points from round to round on a shared 2-core machine, so the median of five rounds can land
on either side of a target a point away: the same code then reads "met" in one run and
"missed" in the next. This module says how far the median can be trusted: a distribution-free
interval for the median cost (from the rounds' order statistics, as the sign test gives it),
and a verdict that is ``met`` only when the whole interval is at or under the target,
``missed`` only when it is all above, and ``undecided`` otherwise (more rounds narrow it;
fewer than five cannot reach the interval's 90 %).
Shared by ``monitoring_cost.py`` and ``guardrails_cost.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from math import comb
from typing import Any

#: The interval's coverage is the highest the rounds allow at or above this (90 %); five
#: rounds give the lowest to the highest cost, 94 %.
CONFIDENCE = 0.90


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """An interval holding the median of the values' distribution with at least
    ``confidence`` (when the rounds allow it: with fewer than five, the widest they give).

    The ``k``-th lowest and ``k``-th highest values bound the median with probability
    ``1 - 2 P(B < k)``, ``B`` binomial of ``len(values)`` draws of one half: the largest ``k``
    that keeps this at ``confidence`` or more is used.
    """
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        raise ValueError("no values to bound")

    def coverage(k: int) -> float:
        below = sum(comb(n, i) for i in range(k)) / 2**n
        return 1.0 - 2.0 * below

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return {"low": ordered[k - 1], "high": ordered[n - k], "confidence": coverage(k), "n": n}


def verdict(costs: Sequence[float], target: float) -> dict[str, Any]:
    """The median cost, its interval and the verdict against ``target`` (a cost at most
    ``target`` meets it)."""
    interval = median_interval(costs)
    if interval["confidence"] < CONFIDENCE:  # too few rounds to tell (fewer than five)
        reading = "undecided"
    elif interval["high"] <= target:
        reading = "met"
    elif interval["low"] > target:
        reading = "missed"
    else:
        reading = "undecided"
    return {
        "cost": statistics.median(costs),
        "cost_interval": [interval["low"], interval["high"]],
        "interval_confidence": interval["confidence"],
        "verdict": reading,
    }


def describe(found: dict[str, Any]) -> str:
    """One line: ``met (median's interval +2.1% to +4.0%, 94% confidence)``."""
    low, high = found["cost_interval"]
    short = found["interval_confidence"] < CONFIDENCE
    return (
        f"{found['verdict']} (median's interval {low:+.1%} to {high:+.1%}, "
        f"{found['interval_confidence']:.0%} confidence"
        + ("; too few rounds: five or more give 90 %)" if short else ")")
    )
