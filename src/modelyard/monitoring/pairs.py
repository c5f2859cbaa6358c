"""A baseline and a current sketch of one column, put on shared bins: what drift tests read.

A :class:`NumericPair` brings two :class:`NumericSketch` to the same shift and the union of
their buckets. Cumulative distributions read at bucket ends are exact, so a statistic read from
them (the Kolmogorov-Smirnov distance) is exact at those points; between them it can miss at
most the largest share of rows one bucket holds (:attr:`NumericPair.resolution`).

A :class:`CategoricalPair` lines up two :class:`Frequencies` on the categories both count
exactly (those below both sides' cut when categories were dropped); the rest of each side's
rows form one ``other`` category. When only the current side dropped categories, the baseline's
are all known, so the current side's rows beyond its cut are split between the baseline's
categories beyond it (one bin) and new ones (another), as near to the baseline as they can be
(see :meth:`CategoricalPair.of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from modelyard.monitoring.frequencies import Frequencies, new_rows
from modelyard.monitoring.sketch import NumericSketch

#: Bins for PSI and the numeric Jensen-Shannon distance: deciles of the baseline (and the
#: ranges below and above it).
QUANTILE_BINS = 10
#: Shares below this are raised to it before taking a logarithm (empty bins).
SHARE_FLOOR = 1e-4


@dataclass(frozen=True, eq=False)
class NumericPair:
    """Baseline and current counts on shared buckets (both sides with at least one value).

    Attributes:
        baseline, current: Counts per shared bucket (int64).
        low, high: The smallest and largest value each bucket can hold, within the data.
    """

    baseline: np.ndarray
    current: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(
        cls, baseline: NumericSketch, current: NumericSketch, tolerance: float = 0.0
    ) -> NumericPair:
        """Align two sketches; with a ``tolerance``, read exact values that close as one (see
        :meth:`within`).

        Raises:
            ValueError: either sketch has no finite value.
        """
        if not baseline.count or not current.count:
            raise ValueError("a numeric pair needs values on both sides")
        shift = max(baseline.shift, current.shift)
        a_buckets, a_counts = baseline.at_shift(shift)
        b_buckets, b_counts = current.at_shift(shift)
        shared = np.sort(np.concatenate([a_buckets, b_buckets]))
        shared = shared[np.diff(shared, prepend=shared[0] - 1) != 0]
        a = np.zeros(len(shared), dtype=np.int64)
        b = np.zeros(len(shared), dtype=np.int64)
        a[np.searchsorted(shared, a_buckets)] = a_counts
        b[np.searchsorted(shared, b_buckets)] = b_counts
        low, high = baseline.bucket_bounds(
            shared,
            shift,
            min(baseline.min_key, current.min_key),
            max(baseline.max_key, current.max_key),
        )
        pair = cls(a, b, low, high)
        return pair.within(tolerance) if tolerance > 0 else pair

    def within(self, tolerance: float) -> NumericPair:
        """This pair with each value of one side merged with its twin on the other: two
        neighbouring exact values (buckets of one value each), one held by the baseline only
        and the other by the current data only, that differ by at most
        ``tolerance * max(1, |value|)``. Values a predictor promises to reproduce only that
        closely count as equal.

        Only such pairs merge, each value with one partner at most, so nothing chains: dense
        values (a fraud model's probabilities packed near 0) keep their resolution, and a
        statistic misses at most the rows of one merged pair, which :attr:`resolution`
        reports. A function of the two sketches alone. Buckets of many values (a sketch past
        :data:`~modelyard.monitoring.sketch.CAP` distinct values) are left as they are: their
        edges can still part two values closer than ``tolerance``, which moves a statistic by
        at most the share of the rows at the values so parted.
        """
        single = self.low == self.high
        only_a = (self.baseline > 0) & (self.current == 0)
        only_b = (self.current > 0) & (self.baseline == 0)
        with np.errstate(over="ignore", invalid="ignore"):
            scale = np.maximum(np.abs(self.low[:-1]), np.abs(self.high[1:]))
            reach = tolerance * np.maximum(1.0, scale)
            twins = (
                single[:-1]
                & single[1:]
                & ((only_a[:-1] & only_b[1:]) | (only_b[:-1] & only_a[1:]))
                & (self.high[1:] - self.low[:-1] <= reach)
            )
        if not twins.any():
            return self
        joins = np.zeros(len(twins), dtype=bool)
        taken = -1  # the bucket last merged: each value has one partner at most
        for i in np.flatnonzero(twins).tolist():  # a few per bunch, at most CAP in all
            if i != taken:
                joins[i] = True
                taken = i + 1
        starts = np.flatnonzero(np.concatenate([[True], ~joins]))
        ends = np.concatenate([starts[1:] - 1, [len(self.low) - 1]])
        return NumericPair(
            np.add.reduceat(self.baseline, starts),
            np.add.reduceat(self.current, starts),
            self.low[starts],
            self.high[ends],
        )

    @property
    def baseline_rows(self) -> int:
        return int(self.baseline.sum())

    @property
    def current_rows(self) -> int:
        return int(self.current.sum())

    @cached_property
    def cdfs(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's cumulative share of rows at the end of every shared bucket."""
        a = np.cumsum(self.baseline) / self.baseline_rows
        b = np.cumsum(self.current) / self.current_rows
        return a, b

    @cached_property
    def midpoints(self) -> np.ndarray:
        """A representative value per bucket: the middle of its range."""
        return self.low / 2 + self.high / 2

    @property
    def resolution(self) -> float:
        """The most a statistic read at bucket ends can miss: the largest share of either
        side's rows in one bucket that spans more than one value (0 when every bucket holds
        one value, as for discrete data)."""
        wide = self.low < self.high
        if not wide.any():
            return 0.0
        return float(
            max(
                self.baseline[wide].max() / self.baseline_rows,
                self.current[wide].max() / self.current_rows,
            )
        )

    @cached_property
    def quantile_shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's share of rows in the baseline's decile bins (bins that would hold one
        repeated value twice are merged, so a bin is never empty on the baseline side), and
        in a bin below the baseline's smallest value and one above its largest when current
        rows fall there (empty on the baseline side). Without those, current rows below the
        baseline shared the lowest decile's bin: a constant baseline of 5 had one bin, so a
        current of 4 was no shift while a current of 6, past the last decile, was one."""
        a, b = self.cdfs
        targets = np.arange(1, QUANTILE_BINS) / QUANTILE_BINS
        held = np.flatnonzero(self.baseline)
        ends = np.searchsorted(a, targets - 1e-12, side="left")
        ends = np.unique(np.concatenate([ends, [held[0] - 1, held[-1]]]))
        ends = ends[(ends >= 0) & (ends < len(a) - 1)]
        edges_a = np.concatenate([[0.0], a[ends], [1.0]])
        edges_b = np.concatenate([[0.0], b[ends], [1.0]])
        return np.diff(edges_a), np.diff(edges_b)

    @cached_property
    def baseline_std(self) -> float:
        """The baseline's standard deviation, from bucket midpoints.

        Only the baseline's own buckets count, and deviations are scaled by the largest
        before squaring: a current value near 1e308 in a bucket the baseline lacks once made
        the sum ``0 * inf`` (NaN, so the Wasserstein distance went unscaled, with warnings
        printed), and a baseline of huge values overflowed to infinity (scaling it to 0)."""
        # Sums, not np.dot: BLAS may hand a short dot product to threads, which costs
        # milliseconds on a busy machine.
        held = self.baseline > 0
        weights = self.baseline[held] / self.baseline_rows
        midpoints = self.midpoints[held]
        mean = float(np.sum(weights * midpoints))
        with np.errstate(over="ignore", invalid="ignore"):
            deviations = np.abs(midpoints - mean)
        largest = float(deviations.max()) if len(deviations) else 0.0
        if largest == 0.0 or not np.isfinite(largest):
            return largest  # constant (0), or wider than a float holds (inf)
        return largest * float(np.sqrt(np.sum(weights * (deviations / largest) ** 2)))


@dataclass(frozen=True, eq=False)
class CategoricalPair:
    """Baseline and current counts on shared categories (the last one may be ``other``).

    Attributes:
        categories: Category texts; ``other`` (when present) is the last and is None.
        baseline, current: Counts per category (int64).
    """

    categories: tuple[str | None, ...]
    baseline: np.ndarray
    current: np.ndarray

    @classmethod
    def of(
        cls, baseline: Frequencies, current: Frequencies, *, by_name: bool = False
    ) -> CategoricalPair:
        """Align two category sketches: for drift tests (new categories in one bin, when the
        baseline counted all of its own), or ``by_name``, each category both sides counted
        exactly in a bin of its own (what a chart shows).

        Raises:
            ValueError: either side has no present value.
        """
        if not baseline.total or not current.total:
            raise ValueError("a categorical pair needs values on both sides")
        if baseline.cut is None and not by_name:
            return cls._complete_baseline(baseline, current, current.cut)
        cuts = [c for c in (baseline.cut, current.cut) if c is not None]
        limit = min(cuts) if cuts else None
        a = {t: n for h, t, n in baseline.categories if limit is None or (h, t) <= limit}
        b = {t: n for h, t, n in current.categories if limit is None or (h, t) <= limit}
        shared = sorted(set(a) | set(b))
        names: list[str | None] = list(shared)
        a_counts = [a.get(n, 0) for n in shared]
        b_counts = [b.get(n, 0) for n in shared]
        other_a, other_b = baseline.total - sum(a_counts), current.total - sum(b_counts)
        if other_a or other_b:
            names.append(None)
            a_counts.append(other_a)
            b_counts.append(other_b)
        return cls(
            tuple(names),
            np.asarray(a_counts, dtype=np.int64),
            np.asarray(b_counts, dtype=np.int64),
        )

    @classmethod
    def _complete_baseline(
        cls, baseline: Frequencies, current: Frequencies, cut: tuple[int, str] | None
    ) -> CategoricalPair:
        """The pair of a baseline whose categories are all counted and a current side that
        kept those up to ``cut`` (None: all of them): each of the baseline's categories up to
        the cut, then one bin of the baseline's categories beyond it, then one bin of the
        current side's new categories, the kept ones among them too: which new value a row
        holds is no matter for drift, and a bin each made the noise allowance grow with their
        number (600 new values in 10 % of the rows read no_drift).

        With a cut, where the current side's rows beyond it fall may not be known: among the
        baseline's categories there, or new. Of those, the least that must be new
        (:func:`~modelyard.monitoring.frequencies.new_rows`) go to the new bin and the others to
        the baseline's bin (the Jensen-Shannon distance only grows as rows move from that bin,
        which the baseline fills, to the new one, which it leaves empty), so the drift read is
        the least the sketches allow. (Lumped into one ``other`` bin with the baseline's
        categories beyond the cut, a window of nothing but new values matched a baseline whose
        categories all lay there.)
        """
        kept = current.counts()  # every category it kept is at or below its cut
        known = {t: n for h, t, n in baseline.categories if cut is None or (h, t) <= cut}
        shared = sorted(known)
        beyond = baseline.total - sum(known.values())
        least_new, _ = new_rows(baseline, current)
        kept_known = sum(kept.get(t, 0) for t in shared)
        a = np.asarray([*(known[t] for t in shared), beyond, 0], dtype=np.float64)
        b = np.asarray(
            [*(kept.get(t, 0) for t in shared), current.total - kept_known - least_new, least_new],
            dtype=np.float64,
        )
        used = (a + b) > 0  # a bin empty on both sides would only widen the noise allowance
        names = [name for name, keep in zip((*shared, None, None), used, strict=True) if keep]
        return cls(tuple(names), a[used].astype(np.int64), b[used].astype(np.int64))

    @property
    def baseline_rows(self) -> int:
        return int(self.baseline.sum())

    @property
    def current_rows(self) -> int:
        return int(self.current.sum())

    @cached_property
    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's share of rows per category."""
        return self.baseline / self.baseline_rows, self.current / self.current_rows


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon distance (base-2 logarithm, so in [0, 1]) of two distributions."""
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        keep = x > 0
        return float(np.sum(x[keep] * np.log2(x[keep] / m[keep])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """The population stability index of ``q`` against ``p`` (shares floored at
    :data:`SHARE_FLOOR` so an empty bin does not make it infinite)."""
    a = np.maximum(p, SHARE_FLOOR)
    b = np.maximum(q, SHARE_FLOOR)
    return float(np.sum((b - a) * np.log(b / a)))
