"""Pearson's chi-square test of homogeneity on the 2 x k table of category counts.

The p-value comes from the chi-square distribution with k - 1 degrees of freedom; the effect
size is Cramér's V, sqrt(chi2 / n) for two rows (in [0, 1]; 0.1 is a small effect), which,
unlike the p-value, does not grow with the number of rows.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import chdtrc, chdtri  # type: ignore[import-untyped]

from modelyard.domain.drift import StatResult
from modelyard.monitoring.pairs import CategoricalPair
from modelyard.monitoring.stats.base import DriftStatistic, Pair


class ChiSquare(DriftStatistic):
    name: ClassVar[str] = "chi_square"
    kinds: ClassVar[frozenset[str]] = frozenset({"categorical"})

    def compute(self, pair: Pair) -> StatResult:
        if not isinstance(pair, CategoricalPair):
            raise TypeError("the chi-square test compares categorical columns")
        observed = np.vstack([pair.baseline, pair.current]).astype(np.float64)
        observed = observed[:, observed.sum(axis=0) > 0]
        if observed.shape[1] < 2:
            return StatResult(self.name, 0.0, 1.0)
        total = observed.sum()
        expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
        chi2 = float(np.sum((observed - expected) ** 2 / expected))

        p = float(chdtrc(observed.shape[1] - 1, chi2))
        return StatResult(self.name, float(np.sqrt(chi2 / total)), p)

    def noise(self, pair: Pair, alpha: float) -> float | None:
        # V is a weighted Euclidean distance between the two samples' shares, so noise moves
        # it by at most the no-shift V's (1 - alpha) quantile, sqrt(chi2(k - 1) / n).

        if not isinstance(pair, CategoricalPair):
            raise TypeError("the chi-square test compares categorical columns")
        k = int(np.count_nonzero(pair.baseline + pair.current))
        if k < 2:
            return 0.0
        total = pair.baseline_rows + pair.current_rows
        return float(np.sqrt(chdtri(k - 1, alpha) / total))
