"""Text read as a number: the one rule every request format (CSV fields, JSON strings) and every
percentage people type (weights, capture, canary and step sizes, shadow sampling) shares.

A number is an ASCII decimal numeral (``-1.5``, ``.5``, ``5.``, ``+1e-3``) or a spelling of
NaN or infinity (``nan``, ``-Infinity``, any case), with at most ASCII spaces and tabs around it.
``float()`` takes more, and numpy's string conversion is ``float()``: digit separators
(``1_000``), digits of other scripts (Arabic-Indic ``١٢``, fullwidth ``\\uff11``) and every Unicode
space or line end around the number (``\\u00a01``, ``"1\\n"``). No CSV writer or JSON library
writes those as numbers, so they are refused (a value that means something else, or a
corrupted export), not guessed at.

``float()`` also reads ``"1e400"`` as infinity without complaint; a numeral too large for a
float64 is almost always a mistake (a unit error, a corrupted export), so it is refused, while
infinity written as such (``inf``, ``-Infinity``) stays a float like any other.

A percentage (:func:`parse_percent_text`) is such a number, optionally followed by ``%``; its
range is the caller's rule. A number given in Python rather than as text (a weight, a shadow
sampling) is read by :func:`real_value`.

The fast paths of :mod:`.payloads` and :mod:`.json_shapes` let numpy or ``float()`` convert and
check afterwards, cheaply, whether anything outside this grammar could have been there
(:data:`NOT_NUMERAL_CHARS`); only then do they read value by value through :func:`parse_number`.
"""

from __future__ import annotations

import math
import numbers
import re

__all__ = ["NOT_NUMERAL_CHARS", "parse_number", "parse_percent_text", "real_value", "shown_value"]

_INFINITIES = frozenset(sign + word for sign in ("", "+", "-") for word in ("inf", "infinity"))
_NUMERAL = re.compile(
    r"[ \t]*[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)[ \t]*",
    re.ASCII | re.IGNORECASE,
)
#: Finds a character no number of the grammar holds: text ``float()`` took holds one exactly
#: when it is not a number of the grammar (a numeral's characters, the letters of nan, inf and
#: infinity in either case, and the spaces and tabs allowed around them).
NOT_NUMERAL_CHARS = re.compile(r"[^0-9.eE+\-nNaAiIfFtTyY \t]").search


def parse_number(text: str) -> float:
    """Read ``text`` as a float: a number of the module's grammar, never one that overflows.

    Args:
        text: The text of one value; ASCII spaces and tabs around it are ignored.

    Returns:
        The float; ``nan`` for the ``nan`` spellings, ±inf only for the infinity spellings.

    Raises:
        ValueError: the text is not a number of the grammar (``1_000``, ``١٢``, ``0x10``).
        OverflowError: the text is a finite numeral too large for a float64 (``1e400``).
    """
    if _NUMERAL.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a decimal number")
    value = float(text)
    if math.isinf(value) and text.strip().lower() not in _INFINITIES:
        raise OverflowError(f"{text!r} is too large for a float")
    return value


def parse_percent_text(text: str) -> float:
    """Read ``text`` as a percentage: ``10``, ``12.5``, ``10%``, ``1e1 %`` → 10.0, 12.5, 10.0,
    10.0; a number of the module's grammar, optionally followed by ``%`` (ASCII spaces and tabs
    around either). The range is the caller's rule: ``-5``, ``nan``, ``inf`` and ``1e400``
    (infinity) are read as the floats they are.

    Raises:
        ValueError: naming the text, when it is not such a number (Arabic-Indic digits,
            ``1_0``, a no-break space around it, ``10%%``).
    """
    number = text.strip(" \t").removesuffix("%")
    if _NUMERAL.fullmatch(number) is None:
        raise ValueError(f"{text!r} is not a decimal number")
    return float(number)


def real_value(given: object) -> float | None:
    """``given`` as a float when it is a real number (numpy's too), else None: a bool is an int
    to Python but ``True`` is a typo, not a number; text is not read here; an int past the
    largest float is none either. The range is the caller's rule (NaN and infinity pass)."""
    if not isinstance(given, numbers.Real) or isinstance(given, bool):
        return None
    try:
        return float(given)
    except OverflowError:
        return None


def shown_value(given: object) -> str:
    """``given`` as a refusal names it: its repr, cut at 60 characters, or for an int past the
    largest float (whose repr runs to hundreds of digits) what it is."""
    if isinstance(given, int) and not isinstance(given, bool) and real_value(given) is None:
        return "an int too large for a float"
    text = repr(given)
    return text if len(text) <= 60 else text[:57] + "..."
