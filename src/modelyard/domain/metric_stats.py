"""Mergeable accumulators behind the per-minute metric series.

A server worker sums what it served in each minute into a :class:`MetricStats` per endpoint
variant: counts and sums (``sums``), smallest values (``lows``) and largest values (``highs``).
Two stats merge exactly (add the sums, keep the smaller low and the larger high), whatever the
order: the workers' rows of one minute merge into the minute, the minutes of an hour into the
hour, and variants into their endpoint. Every series value (a mean, a fraction, a latency
percentile) is computed from the merged accumulators, never averaged from averages.

Keys (``<f>`` a feature, ``<c>`` a class, ``<i>`` a bucket index into :data:`LATENCY_BOUNDS_S`):

==============================  =====================================================
``sums``                        ``requests``, ``errors``, ``server_errors``,
                                ``latency_s``, ``lat.<i>`` (requests per latency bucket),
                                ``request_bytes``/``request_bytes.n``,
                                ``response_bytes``/``response_bytes.n``,
                                ``io_requests`` (requests whose rows were seen), ``rows``,
                                ``repeated``, ``batches``, ``batch_rows``, ``cpu_s``,
                                ``in.n.<f>``, ``in.miss.<f>``, ``in.sum.<f>``,
                                ``txt.n.<f>``, ``txt.len.<f>``,
                                ``out.n``, ``out.miss``, ``out.sum``, ``class.<c>``
``lows`` / ``highs``            ``in.<f>``, ``out``; ``highs`` also ``inflight``,
                                ``memory_bytes`` (one worker's), ``load_s``
==============================  =====================================================

A sum of finite values can pass the largest float (a feature at 1e308 in a few requests of
one minute) while every mean of them is a float. Such a sum carries into ``big:<key>``, kept
scaled down by :data:`CARRY_SCALE`: the sum is ``sums[key] + sums["big:" + key] /
CARRY_SCALE``, and a mean taken from it (:meth:`MetricStats.ratio`) is the true one. Without
the carry the sum was infinite, and the store, whose JSON has no infinity, dropped it: the
minute's mean read 0, or the other workers' sum over everyone's count.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Upper bounds (seconds) of the request latency buckets, in the per-minute series and in the
#: Prometheus histogram alike; a last, unbounded bucket follows.
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

#: A carried sum (``big:<key>``) is the overflowed part times this: 2**-512 leaves room for
#: 2**511 additions of the largest float, and scaling by a power of two loses no digit.
CARRY_SCALE = 2.0**-512
_CARRY = "big:"
_LARGEST = sys.float_info.max


@dataclass(slots=True)
class MetricStats:
    """Counts, sums, lows and highs of one endpoint variant over one period (see module doc)."""

    sums: dict[str, float] = field(default_factory=dict)
    lows: dict[str, float] = field(default_factory=dict)
    highs: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, amount: float) -> None:
        """Add ``amount`` to sum ``key``; a finite sum that would overflow carries instead."""
        sums = self.sums
        current = sums.get(key, 0.0)
        total = current + amount
        if -_LARGEST <= total <= _LARGEST or key.startswith(_CARRY):
            sums[key] = total
        elif math.isfinite(current) and math.isfinite(amount):
            sums[key] = 0.0
            self.carry(key, current * CARRY_SCALE + amount * CARRY_SCALE)
        else:  # an infinite or NaN value was added: no number holds the sum
            sums[key] = total

    def carry(self, key: str, scaled: float) -> None:
        """Add ``scaled / CARRY_SCALE`` to sum ``key`` (a part too large for a float)."""
        if scaled:
            self.sums.setdefault(key, 0.0)
            self.add(_CARRY + key, scaled)

    def total(self, key: str) -> float:
        """Sum ``key`` with its carried part: infinite when it is past the largest float."""
        sums = self.sums
        carried = sums.get(_CARRY + key)
        value = sums.get(key, 0.0)
        if carried:
            value += carried / CARRY_SCALE
        return value

    def low(self, key: str, value: float) -> None:
        current = self.lows.get(key)
        if current is None or value < current:
            self.lows[key] = value

    def high(self, key: str, value: float) -> None:
        current = self.highs.get(key)
        if current is None or value > current:
            self.highs[key] = value

    def merge(self, other: MetricStats) -> MetricStats:
        """Fold ``other`` into this one (in place); returns self."""
        for key, amount in other.sums.items():
            self.add(key, amount)
        for key, value in other.lows.items():
            self.low(key, value)
        for key, value in other.highs.items():
            self.high(key, value)
        return self

    @classmethod
    def merged(cls, parts: Iterable[MetricStats]) -> MetricStats:
        """A new stats holding every one of ``parts`` merged."""
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def copy(self) -> MetricStats:
        return MetricStats(dict(self.sums), dict(self.lows), dict(self.highs))

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON) form; infinite and NaN values (from infinite inputs) are left out,
        as JSON has no number for them."""

        def finite(part: dict[str, float]) -> dict[str, float]:
            return {k: v for k, v in part.items() if math.isfinite(v)}

        return {"sums": finite(self.sums), "lows": finite(self.lows), "highs": finite(self.highs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricStats:
        def floats(part: Any) -> dict[str, float]:
            return {str(k): float(v) for k, v in dict(part or {}).items()}

        return cls(floats(data.get("sums")), floats(data.get("lows")), floats(data.get("highs")))

    # -- derived values ----------------------------------------------------------------------

    def ratio(self, numerator: str, denominator: str) -> float | None:
        """Sum ``numerator`` over sum ``denominator`` (with carried parts, so a mean of finite
        values is finite); None when the denominator is 0 or the ratio is not a finite number
        (a sum holding an infinite value)."""
        below = self.total(denominator)
        if not below:
            return None
        sums = self.sums
        value = sums.get(numerator, 0.0) / below
        carried = sums.get(_CARRY + numerator)
        if carried:
            # Divided before scaled back up: the carried sum itself does not fit a float.
            value += carried / below / CARRY_SCALE
        return value if math.isfinite(value) else None

    def latency_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of request latency (seconds), interpolated linearly inside its
        bucket as Prometheus' ``histogram_quantile`` does; the highest finite bound when it
        falls in the unbounded bucket; None without requests."""
        counts = [self.sums.get(f"lat.{i}", 0.0) for i in range(len(LATENCY_BOUNDS_S) + 1)]
        total = sum(counts)
        if total <= 0:
            return None
        target = q * total
        seen = 0.0
        for i, count in enumerate(counts):
            if count and seen + count >= target:
                if i == len(LATENCY_BOUNDS_S):
                    return LATENCY_BOUNDS_S[-1]
                lower = LATENCY_BOUNDS_S[i - 1] if i else 0.0
                upper = LATENCY_BOUNDS_S[i]
                return lower + (upper - lower) * (target - seen) / count
            seen += count
        return LATENCY_BOUNDS_S[-1]

    def qualifiers(self, prefix: str) -> list[str]:
        """The qualifiers (features, classes) that keys ``prefix<qualifier>`` carry."""
        found = {k[len(prefix) :] for k in self.sums if k.startswith(prefix)}
        return sorted(found)
