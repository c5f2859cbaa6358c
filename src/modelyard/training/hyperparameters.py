"""Hyperparameter specs and their validation: CLI strings (``--hp eta=0.1``) in, typed values out.

Each algorithm declares its hyperparameters as a mapping of name to :class:`Hyperparameter`;
:func:`validate` turns what the user gave into a complete, typed dict, defaults filled in. A
default of None means "not set": the algorithm infers it (an objective) or does without it (an
optional early stop).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.errors import InvalidInput

Kind = Literal["int", "float", "bool", "str", "choice"]
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class Hyperparameter:
    """One hyperparameter an algorithm accepts.

    Attributes:
        name: As typed on the command line (``num_round``).
        kind: ``int``, ``float``, ``bool``, ``str`` or ``choice`` (one of ``choices``).
        default: The value when not given; None means unset (inferred or unused).
        low: Lowest allowed value (inclusive, or exclusive when ``low_open``); None: unbounded.
        high: Highest allowed value, inclusive; None: unbounded.
        choices: The allowed values of a ``choice``.
        help: One line for ``--help`` and error messages.
        low_open: True when ``low`` itself is not allowed (``subsample`` in (0, 1]).
    """

    name: str
    kind: Kind
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    low_open: bool = False

    def allowed(self) -> str:
        """The allowed values in words: ``an integer in [1, 10000]``, ``one of a, b``."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "a string"
        what = "an integer" if self.kind == "int" else "a number"
        if self.low is None and self.high is None:
            return what
        left = "(" if self.low_open or self.low is None else "["
        low = "-inf" if self.low is None else _fmt(self.low)
        high = "inf" if self.high is None else _fmt(self.high)
        right = ")" if self.high is None else "]"
        return f"{what} in {left}{low}, {high}{right}"

    def convert(self, value: Any) -> Any:
        """Return ``value`` (a string from the CLI, or already typed) as this kind.

        Raises:
            InvalidInput: a value of the wrong type or out of range; the message names the
                hyperparameter and what is allowed.
        """
        if value is None:
            return self.default
        try:
            converted = _CONVERTERS[self.kind](value, self)
        except (ValueError, TypeError, OverflowError):
            converted = None
        if converted is None or not self._in_range(converted):
            raise InvalidInput(
                f"hyperparameter {self.name!r} must be {self.allowed()}, got {value!r}"
            )
        return converted

    def _in_range(self, value: Any) -> bool:
        if self.kind not in ("int", "float"):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


def _fmt(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 1e15 else str(bound)


def _to_int(value: Any, _: Hyperparameter) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = float(value.strip() if isinstance(value, str) else value)
    # "100", "1e3" and 100.0 are whole numbers; "2.5" is not.
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _to_float(value: Any, _: Hyperparameter) -> float | None:
    if isinstance(value, bool):
        return None
    number = float(value.strip() if isinstance(value, str) else value)
    return number if math.isfinite(number) else None


def _to_bool(value: Any, _: Hyperparameter) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _to_str(value: Any, _: Hyperparameter) -> str | None:
    return value if isinstance(value, str) else None


def _to_choice(value: Any, spec: Hyperparameter) -> str | None:
    text = value.strip() if isinstance(value, str) else None
    return text if text in spec.choices else None


_CONVERTERS = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "choice": _to_choice,
}


def validate(
    specs: Mapping[str, Hyperparameter], given: Mapping[str, str | int | float | bool | None]
) -> dict[str, Any]:
    """Check and convert ``given`` against ``specs``, filling in defaults.

    Already-typed values pass through unchanged, so validating a validated dict is a no-op.

    Args:
        specs: The algorithm's hyperparameters by name.
        given: What the user set: strings from the CLI, or typed values.

    Returns:
        One typed value per spec, in the specs' order (None for unset optional ones).

    Raises:
        InvalidInput: an unknown name (the message lists the known ones), or a value of the
            wrong type or out of range (the message names the parameter and what is allowed).
    """
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise InvalidInput(
            f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(n) for n in unknown)}; known: {', '.join(sorted(specs))}"
        )
    return {name: spec.convert(given.get(name)) for name, spec in specs.items()}
