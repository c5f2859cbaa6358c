"""Wasserstein (earth mover's) distance: the area between the two cumulative distributions,
divided by the baseline's standard deviation so that it reads the same in any unit (0.1: the
mass moved a tenth of a standard deviation on average). A constant baseline leaves it in the
column's own unit. No p-value.

Each shared bucket's rows are placed at its midpoint, so the error is at most the widest
occupied bucket's half-width.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from modelyard.domain.drift import StatResult
from modelyard.monitoring.pairs import NumericPair
from modelyard.monitoring.stats.base import DriftStatistic, Pair


class Wasserstein(DriftStatistic):
    name: ClassVar[str] = "wasserstein"
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric"})

    def compute(self, pair: Pair) -> StatResult:
        if not isinstance(pair, NumericPair):
            raise TypeError("the Wasserstein distance compares numeric columns")
        a, b = pair.cdfs
        # Half the gaps: midpoints that span more than a float holds (-1e308 to 1e308) made
        # np.diff overflow to inf (a RuntimeWarning on stderr) where the distance in baseline
        # deviations is an ordinary number. Half the distance never overflows.
        half_gaps = np.diff(pair.midpoints / 2)
        half = float(np.sum(np.abs(a[:-1] - b[:-1]) * half_gaps))
        scale = pair.baseline_std
        # Past the largest float, the distance is reported as infinite.
        return StatResult(self.name, 2 * (half / scale) if scale > 0 else 2 * half)
