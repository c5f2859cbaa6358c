"""Baseline and current sketches of one column turned into shares on shared display bins.

What the report draws for a column is read from the same sketches the drift tests read
(:mod:`modelyard.monitoring.pairs`), so the picture and the scores beside it come from the same
numbers:

- numeric (and text-length) columns: both sides' cumulative shares, which are exact at the
  sketches' shared bucket ends, read at :data:`BINS` equal-width bins spanning the central
  99 % of both sides' values (the tails are counted in the first and last bin, so one outlier
  cannot squash the picture). A column of a few distinct values gets one bin per value instead.
- categorical columns: the :data:`TOP` categories with the largest share on either side; the
  rest, and the categories a sketch dropped, are one ``(other)`` bar.

A side without any present value gives no distribution (None): there is nothing to draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.monitoring.frequencies import Frequencies
from modelyard.monitoring.pairs import CategoricalPair, NumericPair
from modelyard.monitoring.report_model import (
    CategoricalDistribution,
    Distribution,
    NumericDistribution,
)
from modelyard.monitoring.sketch import NumericSketch

if TYPE_CHECKING:
    from modelyard.monitoring.profile import ColumnProfile, Profile

#: Equal-width bins of a numeric column's picture.
BINS = 30
#: Share of rows left out of the binned range on each side (they land in the end bins).
TAIL = 0.005
#: Categories drawn; the others are summed into one bar.
TOP = 12
#: The label of the bar that sums the categories not drawn.
OTHER = "(other)"
_LARGEST = float(np.finfo(np.float64).max)


def column_distribution(
    baseline: Profile, current: Profile, column: str, kind: str
) -> Distribution | None:
    """The shares to draw for ``column`` of two profiles, read as drift tests read it.

    Args:
        baseline: The baseline profile (or its prediction profile).
        current: The current window's profile (or its prediction profile).
        column: The column's name.
        kind: How its drift was tested: ``numeric``, ``categorical``, or ``text`` (by the
            lengths of its strings).

    Returns:
        The distribution, or None when either profile lacks the column or its values.
    """
    try:
        sides = baseline.column(column), current.column(column)
    except KeyError:
        return None
    return distribution(*(_sketch(side, kind) for side in sides))


def _sketch(column: ColumnProfile, kind: str) -> Any:
    if kind == "text":
        return column.lengths
    return column.numbers if column.numbers is not None else column.categories


def distribution(baseline: Any, current: Any) -> Distribution | None:
    """The shares to draw for one column, from its baseline and current sketches.

    Args:
        baseline: The baseline's sketch of the column (:class:`NumericSketch` or
            :class:`Frequencies`).
        current: The current window's sketch of the same kind.

    Returns:
        The distribution, or None when either side has no present value or the two sketches
        are of different kinds (a column whose type changed: a quality issue says so).
    """
    if isinstance(baseline, NumericSketch) and isinstance(current, NumericSketch):
        return numeric_distribution(baseline, current)
    if isinstance(baseline, Frequencies) and isinstance(current, Frequencies):
        return categorical_distribution(baseline, current)
    return None


def numeric_distribution(
    baseline: NumericSketch, current: NumericSketch, bins: int = BINS
) -> NumericDistribution | None:
    """Both sides' shares on shared bins (see the module docstring); None without values."""
    if not baseline.count or not current.count:
        return None
    pair = NumericPair.of(baseline, current)
    if len(pair.low) <= bins and bool(np.all(pair.low == pair.high)):
        return _discrete(pair)
    cdf_a, cdf_b = pair.cdfs
    low = min(_quantile(pair.high, cdf_a, TAIL), _quantile(pair.high, cdf_b, TAIL))
    high = max(_quantile(pair.high, cdf_a, 1 - TAIL), _quantile(pair.high, cdf_b, 1 - TAIL))
    if not high > low:
        low, high = float(pair.low[0]), float(pair.high[-1])
    if not high > low:  # one value on both sides
        low, high = _around(low)
    edges = _linspace(low, high, bins + 1)
    return NumericDistribution(
        tuple(edges.tolist()),
        _binned(pair.high, cdf_a, edges),
        _binned(pair.high, cdf_b, edges),
    )


def categorical_distribution(
    baseline: Frequencies, current: Frequencies, top: int = TOP
) -> CategoricalDistribution | None:
    """The largest categories' shares on both sides (see the module docstring); None
    without values."""
    if not baseline.total or not current.total:
        return None
    pair = CategoricalPair.of(baseline, current, by_name=True)
    share_a, share_b = pair.shares
    named = [i for i, name in enumerate(pair.categories) if name is not None]
    ranked = sorted(named, key=lambda i: (-max(share_a[i], share_b[i]), str(pair.categories[i])))
    shown = ranked[:top]
    labels = [str(pair.categories[i]) for i in shown]
    a = [float(share_a[i]) for i in shown]
    b = [float(share_b[i]) for i in shown]
    rest_a, rest_b = 1.0 - sum(a), 1.0 - sum(b)
    if len(shown) < len(pair.categories) and max(rest_a, rest_b) > 1e-12:
        labels.append(OTHER)
        a.append(max(rest_a, 0.0))
        b.append(max(rest_b, 0.0))
    return CategoricalDistribution(tuple(labels), tuple(a), tuple(b))


def _discrete(pair: NumericPair) -> NumericDistribution:
    # One bin per value, its edges halfway to the neighbours: exact shares, no aliasing.
    values = pair.low.astype(np.float64)
    if len(values) == 1:
        edges = np.array(_around(float(values[0])))
    else:
        with np.errstate(over="ignore"):
            sums = values[1:] + values[:-1]
        # Halves first where the sum of two values near the float range's end overflows.
        middles = np.where(np.isfinite(sums), sums / 2, values[1:] / 2 + values[:-1] / 2)
        first = _beyond(float(values[0]), float(middles[0] - values[0]), -1)
        last = _beyond(float(values[-1]), float(values[-1] - middles[-1]), 1)
        edges = np.concatenate([[first], middles, [last]])
    a = pair.baseline / pair.baseline_rows
    b = pair.current / pair.current_rows
    return NumericDistribution(tuple(edges.tolist()), tuple(a.tolist()), tuple(b.tolist()))


def _around(value: float) -> tuple[float, float]:
    """A bin holding ``value`` alone: finite edges either side of it, even where 0.5 is below
    the value's precision or beyond the float range."""
    gap = max(0.5, abs(value) * 2.0**-20)
    return _beyond(value, gap, -1), _beyond(value, gap, 1)


def _beyond(value: float, gap: float, direction: int) -> float:
    """``value`` moved by ``gap`` in ``direction`` (-1 or 1), at most to the largest float:
    past it, the edge is the value itself (its bin still has the other edge apart)."""
    return min(max(value + direction * gap, -_LARGEST), _LARGEST)


def _linspace(low: float, high: float, count: int) -> np.ndarray:
    """``np.linspace`` that stays finite when ``high - low`` is beyond the float range."""
    if np.isfinite(high - low):
        return np.linspace(low, high, count)
    return np.linspace(low / 2, high / 2, count) * 2


def _quantile(ends: np.ndarray, cdf: np.ndarray, q: float) -> float:
    """The end of the first bucket where the cumulative share reaches ``q``."""
    index = min(int(np.searchsorted(cdf, q, side="left")), len(ends) - 1)
    return float(ends[index])


def _binned(ends: np.ndarray, cdf: np.ndarray, edges: np.ndarray) -> tuple[float, ...]:
    # The cumulative share at each inner edge: every bucket that ends at or before it.
    inner = edges[1:-1]
    index = np.searchsorted(ends, inner, side="right") - 1
    at = np.where(index >= 0, cdf[np.clip(index, 0, len(cdf) - 1)], 0.0)
    cumulative = np.concatenate([[0.0], at, [1.0]])
    return tuple(np.diff(cumulative).tolist())
