"""The drift statistic interface: one small class per statistic, one file each.

A statistic reads an aligned pair of sketches (:mod:`modelyard.monitoring.pairs`) and returns
its effect size and, when it is a significance test, a p-value; it may also bound how far
sampling noise moves it (:meth:`DriftStatistic.noise`). It is stateless and never sees
raw rows, so the same code compares a million rows or a hundred.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from modelyard.domain.drift import StatResult
from modelyard.monitoring.pairs import CategoricalPair, NumericPair

Pair = NumericPair | CategoricalPair


class DriftStatistic(ABC):
    """One drift statistic.

    Attributes:
        name: Its name in configs and reports (one of ``domain.drift.STATISTICS``).
        kinds: The pair types it reads: ``numeric`` (numbers and text lengths) and/or
            ``categorical``.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    @abstractmethod
    def compute(self, pair: Pair) -> StatResult:
        """The statistic on ``pair`` (a pair of a kind in :attr:`kinds`).

        Raises:
            TypeError: ``pair`` is of a kind this statistic does not read.
        """

    def noise(self, pair: Pair, alpha: float) -> float | None:
        """How far sampling noise alone can move this statistic: a value it exceeds with
        probability at most ``alpha`` when the two samples come from distributions this
        statistic puts at distance t, beyond t (None: no such bound is known).

        A drift verdict needs the effect minus this noise to reach the threshold, so that a
        small sample's noise is not taken for a shift larger than the threshold.
        """
        return None
