"""Population Stability Index: sum over bins of (current - baseline) * ln(current / baseline).

Numeric columns use the baseline's decile bins (and a bin for values below its smallest
and one for values above its largest); categorical columns use their categories. No
p-value. Common reading: below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 large.
"""

from __future__ import annotations

from typing import ClassVar

from modelyard.domain.drift import StatResult
from modelyard.monitoring.pairs import NumericPair, psi
from modelyard.monitoring.stats.base import DriftStatistic, Pair


class PopulationStabilityIndex(DriftStatistic):
    name: ClassVar[str] = "psi"
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric", "categorical"})

    def compute(self, pair: Pair) -> StatResult:
        p, q = pair.quantile_shares if isinstance(pair, NumericPair) else pair.shares
        return StatResult(self.name, psi(p, q))
