"""Drift statistics, found by name: PSI, Kolmogorov-Smirnov, chi-square, Jensen-Shannon and
Wasserstein, one class per module."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from modelyard.domain.drift import STATISTICS
from modelyard.monitoring.stats.base import DriftStatistic, Pair
from modelyard.monitoring.stats.chi_square import ChiSquare
from modelyard.monitoring.stats.jensen_shannon import JensenShannon
from modelyard.monitoring.stats.ks import KolmogorovSmirnov
from modelyard.monitoring.stats.psi import PopulationStabilityIndex
from modelyard.monitoring.stats.wasserstein import Wasserstein

__all__ = ["STATS", "DriftStatistic", "Pair"]

STATS: Mapping[str, DriftStatistic] = MappingProxyType(
    {
        s.name: s
        for s in (
            KolmogorovSmirnov(),
            PopulationStabilityIndex(),
            Wasserstein(),
            ChiSquare(),
            JensenShannon(),
        )
    }
)
assert tuple(sorted(STATS)) == tuple(sorted(STATISTICS)), "domain.drift.STATISTICS is stale"
