"""Text read as a number: the one rule every request format (CSV fields, JSON strings) shares.

``float()`` reads ``"1e400"`` as infinity without complaint, and numpy does the same; a numeral
too large for a float64 is almost always a mistake (a unit error, a corrupted export), so it is
refused, while infinity written as such (``inf``, ``-Infinity``) stays a float like any other.
"""

from __future__ import annotations

import math

__all__ = ["parse_number"]

_INFINITIES = frozenset(sign + word for sign in ("", "+", "-") for word in ("inf", "infinity"))


def parse_number(text: str) -> float:
    """Read ``text`` as a float, as ``float()`` does, but refuse a numeral that overflows.

    Args:
        text: The text of one value; surrounding whitespace is ignored.

    Returns:
        The float; ``nan`` for the ``nan`` spellings, ±inf only for the infinity spellings.

    Raises:
        ValueError: the text is not a number.
        OverflowError: the text is a finite numeral too large for a float64 (``1e400``).
    """
    value = float(text)
    if math.isinf(value) and text.strip().lower() not in _INFINITIES:
        raise OverflowError(f"{text!r} is too large for a float")
    return value
