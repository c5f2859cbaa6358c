"""Kolmogorov-Smirnov: the largest gap between the two cumulative distributions.

The effect size is the statistic D itself (a share of rows, in [0, 1]). It is read at the
shared bucket ends, where both sketches' distributions are exact, so it never exceeds the exact
D and falls short of it by at most the pair's ``resolution``. The p-value is the two-sample
asymptotic one scipy's ``ks_2samp`` uses, the one-sample distribution ``kstwo`` at the
effective size n * m / (n + m), and its Kolmogorov limit for large samples. The noise bound
is the Kolmogorov limit's critical value at that size.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import kolmogi, kolmogorov  # type: ignore[import-untyped]

from modelyard.domain.drift import StatResult
from modelyard.monitoring.pairs import NumericPair
from modelyard.monitoring.stats.base import DriftStatistic, Pair


class KolmogorovSmirnov(DriftStatistic):
    name: ClassVar[str] = "ks"
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric"})

    def compute(self, pair: Pair) -> StatResult:
        if not isinstance(pair, NumericPair):
            raise TypeError("the KS statistic compares numeric columns")
        a, b = pair.cdfs
        d = float(np.max(np.abs(a - b)))
        n, m = pair.baseline_rows, pair.current_rows
        return StatResult(self.name, d, ks_p_value(d, n * m / (n + m)))

    def noise(self, pair: Pair, alpha: float) -> float | None:
        # D is a distance between distributions: the observed D exceeds the true one by at
        # most the largest deviation of the two empirical distributions from their own, which
        # has the no-shift distribution of D (its Kolmogorov limit is slightly wider).
        n, m = pair.baseline_rows, pair.current_rows
        return float(kolmogi(alpha) / np.sqrt(n * m / (n + m)))


#: Above this effective size the p-value is the limiting (Kolmogorov) distribution's: scipy's
#: exact ``kstwo`` takes up to a second per call there, and the two differ by less than 0.01.
EXACT_UP_TO = 1000


def ks_p_value(d: float, effective_n: float) -> float:
    """P(D >= d) for two samples of effective size ``effective_n``: scipy's ``kstwo`` (the
    one-sample exact distribution) up to :data:`EXACT_UP_TO`, the Kolmogorov limit
    ``kolmogorov(sqrt(n) * d)`` beyond, which is slightly larger (a conservative p-value)."""
    n = max(1, round(effective_n))
    if n <= EXACT_UP_TO:
        from scipy.stats import kstwo  # type: ignore[import-untyped]

        p = float(kstwo.sf(d, n))
    else:
        p = float(kolmogorov(np.sqrt(n) * d))
    return float(np.clip(p, 0.0, 1.0))
