"""Jensen-Shannon distance: the square root of the mean Kullback-Leibler divergence of each
distribution from their average, with base-2 logarithms (so in [0, 1]).

Categorical columns use their categories; numeric columns the baseline's decile bins (and
the ranges below and above it, see ``NumericPair.quantile_shares``). No
p-value (for categories the chi-square test gives one). The noise bound uses the metric's
triangle inequality and the chi-square approximation of each side's sampling distance.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import chdtri  # type: ignore[import-untyped]

from modelyard.domain.drift import StatResult
from modelyard.monitoring.pairs import NumericPair, js_distance
from modelyard.monitoring.stats.base import DriftStatistic, Pair


class JensenShannon(DriftStatistic):
    name: ClassVar[str] = "jensen_shannon"
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric", "categorical"})

    def compute(self, pair: Pair) -> StatResult:
        p, q = pair.quantile_shares if isinstance(pair, NumericPair) else pair.shares
        return StatResult(self.name, js_distance(p, q))

    def noise(self, pair: Pair, alpha: float) -> float | None:
        # The distance is a metric: the observed one exceeds the true one by at most each
        # side's distance from its own population. For a sample of n rows over k bins that is
        # about sqrt(chi2(k - 1) / (8 n ln 2)); each side gets half of alpha.

        p, _ = pair.quantile_shares if isinstance(pair, NumericPair) else pair.shares
        if len(p) < 2:
            return 0.0
        quantile = float(chdtri(len(p) - 1, alpha / 2))
        return sum(
            float(np.sqrt(quantile / (8 * n * np.log(2))))
            for n in (pair.baseline_rows, pair.current_rows)
        )
