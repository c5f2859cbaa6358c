"""A deterministic, exactly mergeable quantile sketch of one numeric column.

How it works: every finite float64 maps to an order-preserving 64-bit integer *key* (its IEEE
bits, with the magnitude bits of negative numbers flipped). A bucket is a key shifted right by
``shift`` bits: shift 0 keeps every distinct value apart (exact), each further bit halves the
precision (with ``shift`` <= 52, buckets are ranges of relative width ``2 ** (shift - 52)``).
The sketch keeps the occupied buckets and their counts, at the smallest shift where at most
:data:`CAP` buckets are occupied.

That shift is a function of the multiset of values alone (the occupancy of a shift never grows
with the shift), so:

- the same values give the same sketch, in any order (and the same bytes, see ``codec``);
- merging two sketches (bring both to the larger shift, add counts, coarsen again while too many
  buckets are occupied) gives exactly the sketch of all their values together;
- memory is at most :data:`CAP` buckets, whatever the row count.

Accuracy: a cumulative distribution read at bucket edges is exact, so a Kolmogorov-Smirnov
statistic computed from two sketches is never larger than the exact one and falls short of it
by at most the largest share of rows in one bucket (see ``pairs.NumericPair``).

Missing values (NaN, None, +-inf) are counted apart; count, minimum, maximum and the sum are
exact (the sum as an integer multiple of 2**-1074, the smallest float64 step, so that sums of
parts add up exactly).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The most buckets a sketch keeps (16 bytes each in memory).
CAP = 1 << 14
#: The sum is kept as an integer count of this smallest float64 step (2**-1074).
SUM_SCALE_BITS = 1074
_MASK = np.int64(0x7FFF_FFFF_FFFF_FFFF)
_EMPTY = np.zeros(0, dtype=np.int64)


def keys_to_floats(keys: np.ndarray) -> np.ndarray:
    """The float64 values whose keys are ``keys`` (the inverse of the key mapping)."""
    keys = np.asarray(keys, dtype=np.int64)
    return (keys ^ ((keys >> 63) & _MASK)).view(np.float64)


def float_key(value: float) -> int:
    """The key of one finite float (``-0.0`` has the key of ``0.0``)."""
    bits = int(np.array([value + 0.0], dtype=np.float64).view(np.int64)[0])
    return bits ^ 0x7FFF_FFFF_FFFF_FFFF if bits < 0 else bits


@dataclass(frozen=True, eq=False)
class NumericSketch:
    """The sketch of one numeric column (see the module docstring).

    Attributes:
        shift: Bits dropped from each key (0: exact values).
        buckets: Occupied bucket ids (key >> shift), strictly increasing, int64.
        counts: Values per bucket, int64, all > 0.
        missing: NaN, None and infinite values.
        exact_sum: The sum of the finite values times 2**1074 (an exact integer).
        min_key, max_key: Keys of the smallest and largest finite value (0 when none).
        cap: The most buckets kept (sketches merge only with sketches of the same cap).
    """

    shift: int
    buckets: np.ndarray
    counts: np.ndarray
    missing: int
    exact_sum: int
    min_key: int
    max_key: int
    cap: int = CAP

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def empty(cls, cap: int = CAP) -> NumericSketch:
        """The sketch of no values."""
        return cls(0, _EMPTY, _EMPTY, 0, 0, 0, 0, cap)

    @classmethod
    def of(cls, values: Any, cap: int = CAP) -> NumericSketch:
        """Sketch ``values`` (anything ``numpy.asarray(..., float64)`` takes; NaN, None and
        +-inf count as missing). Costs one sort of the finite values.

        Raises:
            ValueError: ``cap`` is below 2.
        """
        if cap < 2:
            raise ValueError(f"a sketch needs room for 2 buckets at least, not {cap}")
        data = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(data)
        present = int(np.count_nonzero(finite))
        missing = len(data) - present
        if present == 0:
            return cls(0, _EMPTY, _EMPTY, missing, 0, 0, 0, cap)
        ordered = data.copy() if present == len(data) else data[finite]  # never the caller's
        ordered.sort()
        first_zero = int(np.searchsorted(ordered, 0.0, side="left"))
        after_zeros = int(np.searchsorted(ordered, 0.0, side="right"))
        ordered[first_zero:after_zeros] = 0.0  # -0.0 sorts with 0.0: give them one key
        total = _exact_sum(ordered)
        keys = ordered.view(np.int64)
        keys[:first_zero] ^= _MASK  # negative numbers' keys, in place: ``ordered`` is spent
        buckets, counts, shift = settle(keys, None, 0, cap)
        return cls(shift, buckets, counts, missing, total, int(keys[0]), int(keys[-1]), cap)

    def merge(self, other: NumericSketch) -> NumericSketch:
        """The sketch of both sketches' values together (exactly what sketching them at once
        gives).

        Raises:
            ValueError: the two sketches keep different numbers of buckets.
        """
        if self.cap != other.cap:
            raise ValueError(f"cannot merge sketches of {self.cap} and {other.cap} buckets")
        if self.count == 0 or other.count == 0:
            kept = other if self.count == 0 else self
            return NumericSketch(
                kept.shift if kept.count else 0,
                kept.buckets,
                kept.counts,
                self.missing + other.missing,
                kept.exact_sum,
                kept.min_key,
                kept.max_key,
                self.cap,
            )
        shift = max(self.shift, other.shift)
        a_buckets, a_counts = self.at_shift(shift)
        b_buckets, b_counts = other.at_shift(shift)
        joined = np.concatenate([a_buckets, b_buckets])
        order = np.argsort(joined, kind="stable")
        counts = np.concatenate([a_counts, b_counts])[order]
        buckets, counts, shift = settle(joined[order], counts, shift, self.cap)
        return NumericSketch(
            shift,
            buckets,
            counts,
            self.missing + other.missing,
            self.exact_sum + other.exact_sum,
            min(self.min_key, other.min_key),
            max(self.max_key, other.max_key),
            self.cap,
        )

    # -- reading -----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Finite values."""
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        """All values, missing ones included."""
        return self.count + self.missing

    @property
    def min(self) -> float | None:
        return float(keys_to_floats(np.array([self.min_key]))[0]) if self.count else None

    @property
    def max(self) -> float | None:
        return float(keys_to_floats(np.array([self.max_key]))[0]) if self.count else None

    @property
    def sum(self) -> float | None:
        """The exact sum rounded once to float64 (None without values; may be +-inf when the
        true sum exceeds float64)."""
        if not self.count:
            return None
        try:
            return self.exact_sum / (1 << SUM_SCALE_BITS)
        except OverflowError:
            return float("inf") if self.exact_sum > 0 else float("-inf")

    @property
    def mean(self) -> float | None:
        """The exact mean rounded once to float64."""
        return self.exact_sum / (self.count << SUM_SCALE_BITS) if self.count else None

    def at_shift(self, shift: int) -> tuple[np.ndarray, np.ndarray]:
        """Buckets and counts coarsened to ``shift`` (>= this sketch's shift)."""
        if shift < self.shift:
            raise ValueError(f"cannot refine a sketch from shift {self.shift} to {shift}")
        if shift == self.shift:
            return self.buckets, self.counts
        coarse = self.buckets >> (shift - self.shift)
        starts = np.flatnonzero(np.diff(coarse, prepend=coarse[0] - 1))
        return coarse[starts], np.add.reduceat(self.counts, starts)

    def bucket_bounds(
        self, buckets: np.ndarray, shift: int, low_key: int, high_key: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The smallest and largest float each bucket (at ``shift``) can hold, clipped to the
        keys ``[low_key, high_key]`` (so never infinite or NaN)."""
        low = np.maximum(buckets << shift, low_key)
        high = np.minimum((buckets << shift) | np.int64((1 << shift) - 1), high_key)
        return keys_to_floats(low), keys_to_floats(high)

    def quantiles(self, qs: Any) -> np.ndarray:
        """Approximate quantiles: the midpoint of the bucket where the cumulative count first
        reaches ``q * count`` (NaN for an empty sketch)."""
        qs = np.asarray(qs, dtype=np.float64)
        if not self.count:
            return np.full(qs.shape, np.nan)
        cumulative = np.cumsum(self.counts)
        index = np.searchsorted(cumulative, qs * cumulative[-1], side="left")
        index = np.clip(index, 0, len(cumulative) - 1)
        low, high = self.bucket_bounds(self.buckets[index], self.shift, self.min_key, self.max_key)
        return low / 2 + high / 2


def settle(
    keys: np.ndarray, counts: np.ndarray | None, shift: int, cap: int = CAP
) -> tuple[np.ndarray, np.ndarray, int]:
    """Buckets and counts of sorted ``keys`` (bucket ids at ``shift``, repeats allowed; each
    weighing its entry of ``counts``, or 1) at the smallest shift >= ``shift`` where at most
    ``cap`` buckets are occupied.

    One pass finds that shift for every candidate at once: two neighbours in sorted order fall
    in different buckets at extra shift ``t`` exactly when the highest bit where they differ is
    at position ``t`` or above, i.e. when the bit length of their XOR exceeds ``t``.
    """
    if len(keys) == 0:
        return _EMPTY, _EMPTY, shift
    order = np.bitwise_xor(keys[1:], keys[:-1])
    lengths = _length_histogram(order, keys)
    # apart[t] = neighbour pairs still in different buckets at extra shift t (length > t).
    apart = np.cumsum(lengths[::-1])[::-1][1:]
    extra = min(int(np.argmax(apart < cap)), 63 - shift)
    # length > extra  <=>  biased exponent > extra + 1022 (see _length_histogram)
    starts = np.flatnonzero(order > extra + _BIAS)
    starts += 1
    starts = np.concatenate([np.zeros(1, dtype=starts.dtype), starts])
    buckets = keys[starts] >> extra
    sizes = np.diff(starts, append=len(keys)) if counts is None else np.add.reduceat(counts, starts)
    return buckets, sizes.astype(np.int64, copy=False), shift + extra


#: A float64 in [2**(L-1), 2**L) has biased exponent L + 1022.
_BIAS = 1022


def _length_histogram(xor: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """How many of ``xor`` (``keys[i + 1] ^ keys[i]``, int64) have each bit length 0..64.

    ``xor`` is overwritten, in place, with a value that orders like the bit length: the biased
    exponent of its conversion to float64, raised to at least 1022 (bit length 0); bit length
    L is ``value - 1022``. Above 2**53 the conversion rounds and may round up to the next power
    of two: those entries are checked exactly. The one XOR whose two keys differ in sign is
    negative (64 bits).
    """
    crossing = int(np.searchsorted(keys, 0))  # keys are sorted: one sign change at most
    negative = crossing - 1 if 0 < crossing < len(keys) and keys[crossing - 1] < 0 else -1
    if negative >= 0:
        xor[negative] = 0
    np.copyto(xor.view(np.float64), xor, casting="unsafe")
    np.right_shift(xor, 52, out=xor)
    np.maximum(xor, _BIAS, out=xor)
    lengths = np.bincount(xor, minlength=_BIAS + 65)[_BIAS:]
    if lengths[54:].any():
        big = np.flatnonzero(xor > _BIAS + 53)
        claimed = xor[big]
        exact = (keys[big + 1] ^ keys[big]).view(np.uint64)
        down = (exact >> (claimed - _BIAS - 1).astype(np.uint64)) == 0
        if down.any():
            moved = claimed[down] - _BIAS
            np.subtract.at(lengths, moved, 1)
            np.add.at(lengths, moved - 1, 1)
            xor[big[down]] -= 1
    if negative >= 0:
        xor[negative] = _BIAS + 64
        lengths[0] -= 1
        lengths[64] += 1
    return lengths[:65]


#: Powers of two bounding the float64 binades, for finding runs of one sign and exponent.
_POWERS = np.ldexp(1.0, np.arange(-1022, 1024))
_NEGATIVE_EDGES = np.concatenate([[-np.inf], -_POWERS[::-1]])


def _exact_sum(ordered: np.ndarray) -> int:
    """The sum of the sorted, finite float64 values ``ordered``, times 2**1074, exactly.

    Values that share sign and exponent are contiguous once sorted (the runs are found by
    binary search on powers of two); within such a run each value is (2**52 + mantissa) *
    2**(exponent - 1075), so the run's sum needs only its length and the sum of its mantissas,
    added up from the high and low 32-bit words of the values without a temporary array.
    """
    n = len(ordered)
    starts = np.unique(
        np.concatenate(
            [
                [0],
                np.searchsorted(ordered, _NEGATIVE_EDGES, side="right"),
                np.searchsorted(ordered, [0.0], side="left"),
                np.searchsorted(ordered, _POWERS, side="left"),
            ]
        )
    )
    starts = starts[starts < n]
    words = _words(ordered)
    high_sums = np.add.reduceat(words[1], starts, dtype=np.int64).tolist()
    low_sums = np.add.reduceat(words[0], starts, dtype=np.int64).tolist()
    tops = (words[1][starts] >> 20).tolist()  # sign and biased exponent of each run
    sizes = np.diff(starts, append=n).tolist()
    total = 0
    for top, high, low, size in zip(tops, high_sums, low_sums, sizes, strict=True):
        exponent = top & 0x7FF
        part = ((high - (size * top << 20)) << 32) + low  # the run's mantissa sum
        if exponent:  # normal numbers carry the implicit leading bit
            part = (part + (size << 52)) << (exponent - 1)
        total += -part if top & 0x800 else part
    return total


def _words(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The low and high 32-bit words of each float64, as uint32 views when the machine is
    little-endian (else as new arrays)."""
    if sys.byteorder == "little":
        halves = values.view(np.uint32)
        return halves[0::2], halves[1::2]
    bits = values.view(np.uint64)
    return (bits & np.uint64(0xFFFF_FFFF)).astype(np.uint32), (bits >> np.uint64(32)).astype(
        np.uint32
    )
