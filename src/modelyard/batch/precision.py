"""Which values lose precision when a float32 model is fed the float64 numbers a text file
spells: counted, so that a job can say so instead of rounding silently.

A value is kept when its float32 is the same number (``0.5``, or a float32 written in full),
or when the float32 still reads back as the decimal that was written: the float32 nearest to
``1.2345`` prints as ``1.2345``, so nothing the file said is lost (that is how a float32
written by numpy, pandas or pyarrow reads back). It is lost when the file says more than a
float32 holds (``0.123456789012``: the float32 reads back as ``0.12345679``), or when the
value is out of float32's range (it becomes infinite, or zero). NaN is kept.

The test is vectorised: one rounding for the whole block first (to the decimals that leave
7 significant digits at its largest value), then the exact comparison, then, for what is
left, whether the float32 rounded to 7, 8 or 9 significant digits is the written value (a
decimal of 6 digits or fewer always reads back at 7; one of 7 nearly always does).
"""

from __future__ import annotations

import numpy as np

__all__ = ["float32_losses"]

# 10**p for p in [-_SPAN, _SPAN]: exact as float64 for |p| <= 22, which covers every value
# a CSV usually holds; beyond it a kept value may be counted as lost (never the reverse
# for the range float32 can hold).
_SPAN = 60
_POW10 = 10.0 ** np.arange(-_SPAN, _SPAN + 1, dtype=np.float64)
_DIGITS = (7, 8, 9)
_BLOCK_RANGE = (1e-30, 3e38)


def float32_losses(rows: np.ndarray) -> tuple[int, int]:
    """How many values of float64 ``rows`` lose precision as float32, and the row of the
    first (-1 when none)."""
    flat = rows.reshape(-1)
    if flat.size == 0:
        return 0, -1
    with np.errstate(all="ignore"):
        # One rounding for the whole block first: a value written with no more decimals than
        # 7 significant digits leave at the block's largest value reads back (a fixed-point
        # file passes here, without a cast).
        top = max(flat.max(), -flat.min())
        if np.isnan(top):
            top = np.nanmax(np.abs(flat), initial=0.0)
        kept = np.zeros(flat.shape, dtype=bool)
        if _BLOCK_RANGE[0] <= top <= _BLOCK_RANGE[1]:  # every non-zero kept one a normal float32
            scale = _POW10[_SPAN + int(np.clip(6 - np.floor(np.log10(top)), -_SPAN, _SPAN))]
            scaled = np.multiply(flat, scale)
            np.rint(scaled, out=scaled)
            np.divide(scaled, scale, out=scaled)
            np.equal(scaled, flat, out=kept)
            if kept.all():
                return 0, -1
        back = flat.astype(np.float32).astype(np.float64)
        kept |= back == flat
        kept |= np.isnan(flat)
        if kept.all():
            return 0, -1
        where = np.flatnonzero(~kept)
        values, approx = flat[where], back[where]
        lost = ~np.isfinite(approx) | (approx == 0.0)
        check = np.flatnonzero(~lost)
        lost[check[~_reads_back(values[check], approx[check])]] = True
    count = int(lost.sum())
    if count == 0:
        return 0, -1
    width = rows.shape[1] if rows.ndim == 2 else 1
    return count, int(where[np.argmax(lost)]) // max(1, width)


def _reads_back(values: np.ndarray, approx: np.ndarray) -> np.ndarray:
    """Whether each float32 (as float64 ``approx``) rounded to 7, 8 or 9 significant digits
    is the float64 ``values`` (the decimal the file wrote)."""
    exponent = np.floor(np.log10(np.abs(approx))).astype(np.int64)
    kept = np.zeros(len(values), dtype=bool)
    todo = np.arange(len(values))
    for digits in _DIGITS:
        if len(todo) == 0:
            break
        power = np.clip(digits - 1 - exponent[todo], -_SPAN, _SPAN)
        up = _POW10[_SPAN + np.maximum(power, 0)]  # multiply by 10**p when p >= 0
        down = _POW10[_SPAN + np.maximum(-power, 0)]  # divide by 10**-p when p < 0
        mantissa = np.rint(approx[todo] * up / down)
        same = (mantissa / up * down) == values[todo]
        kept[todo[same]] = True
        todo = todo[~same]
    return kept
