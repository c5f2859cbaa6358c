"""Search spaces: ``--range`` strings in, typed ranges (and Optuna distributions) out.

The syntax, one range per hyperparameter::

    max_depth=int:3:10            integers 3..10
    num_round=int:50:500:step=50  every 50th
    eta=float:0.01:0.3:log        log-uniform
    subsample=float:0.5:1:step=0.1
    booster=cat:gbtree,dart       one of the listed values

A range is checked against the algorithm's own hyperparameter spec (both bounds and every
choice must be values the algorithm accepts), so a wrong range fails at submission, not in
trial 17.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import InvalidInput
from modelyard.training.hyperparameters import Hyperparameter

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

RangeKind = Literal["int", "float", "cat"]
_SYNTAX = "NAME=int:LOW:HIGH[:log|:step=S], NAME=float:LOW:HIGH[:log|:step=S] or NAME=cat:A,B,…"
#: A grid larger than this is refused: the user meant a different strategy.
MAX_GRID = 100_000


@dataclass(frozen=True, slots=True)
class ParamRange:
    """One tuned hyperparameter.

    Attributes:
        name: The hyperparameter.
        kind: ``int``, ``float`` or ``cat``.
        low, high: Inclusive bounds (numeric kinds).
        log: Sample on a log scale.
        step: Only multiples of ``step`` above ``low`` (numeric kinds); None: continuous.
        choices: The values of a ``cat`` range, as typed.
    """

    name: str
    kind: RangeKind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[str, ...] = ()

    def text(self) -> str:
        """The range in ``--range`` syntax (what the job records)."""
        if self.kind == "cat":
            return f"{self.name}=cat:{','.join(self.choices)}"
        parts = [self.kind, _num(self.low), _num(self.high)]
        if self.log:
            parts.append("log")
        if self.step is not None:
            parts.append(f"step={_num(self.step)}")
        return f"{self.name}={':'.join(parts)}"

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution to sample this range from."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "cat":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def grid_count(self) -> int:
        """How many values :meth:`grid` returns (without building them).

        Raises:
            InvalidInput: a continuous float range (a grid needs ``step=``).
        """
        if self.kind == "cat":
            return len(self.choices)
        if self.kind == "float" and self.step is None:
            raise InvalidInput(
                f"grid search needs a step for the float range {self.text()!r}: "
                f"write {self.name}=float:{_num(self.low)}:{_num(self.high)}:step=S"
            )
        return math.floor((self.high - self.low) / (self.step or 1) + 1e-9) + 1

    def grid(self) -> list[Any]:
        """Every value a grid search tries (build it only after checking ``grid_count``).

        Raises:
            InvalidInput: a continuous float range (a grid needs ``step=``).
        """
        count = self.grid_count()
        if self.kind == "cat":
            return list(self.choices)
        step = self.step or 1
        if self.kind == "int":
            return [int(self.low) + i * int(step) for i in range(count)]
        return [round(self.low + i * step, 12) for i in range(count)]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_range(text: str) -> ParamRange:
    """Parse one ``--range`` string.

    Raises:
        InvalidInput: naming the range and the expected syntax.
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    kind, _, body = rest.partition(":")
    kind = kind.strip()

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"invalid range {text!r}: {why}; expected {_SYNTAX}")

    if not name:
        raise bad("no hyperparameter name")
    if not sep:
        raise bad(f"no '=KIND:…' after {name!r}")
    if kind == "cat":
        choices = tuple(c.strip() for c in body.split(","))
        if not body or any(not c for c in choices):
            raise bad("empty choice")
        if len(set(choices)) != len(choices):
            raise bad("a choice is listed twice")
        return ParamRange(name, "cat", choices=choices)
    if kind not in ("int", "float"):
        raise bad(f"unknown kind {kind!r}")
    parts = [p.strip() for p in body.split(":")]
    if len(parts) < 2:
        raise bad("LOW and HIGH are needed")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise bad("LOW and HIGH must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise bad("LOW must be a number no larger than HIGH")
    log, step = False, None
    for option in parts[2:]:
        if option == "log":
            log = True
        elif option.startswith("step="):
            try:
                step = float(option[5:])
            except ValueError:
                raise bad(f"step {option[5:]!r} is not a number") from None
            if not (math.isfinite(step) and step > 0):
                raise bad("step must be positive")
        else:
            raise bad(f"unknown option {option!r}")
    if log and step is not None:
        raise bad("log and step cannot be combined")
    # With a tolerance: 0.3 - 0.1 is 0.19999999999999998, and step=0.2 tries 0.1 and 0.3.
    if step is not None and low < high and step > (high - low) * (1 + 1e-9):
        raise bad(
            f"step {_num(step)} is wider than the range from {_num(low)} to {_num(high)}: "
            "only LOW could be tried"
        )
    if log and low <= 0:
        raise bad("a log range needs LOW > 0")
    if kind == "int" and not (
        low.is_integer() and high.is_integer() and (step is None or step.is_integer())
    ):
        raise bad("an int range needs whole numbers")
    numeric: RangeKind = "int" if kind == "int" else "float"
    return ParamRange(name, numeric, low=low, high=high, log=log, step=step)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """The tuned hyperparameters, in the order given."""

    ranges: tuple[ParamRange, ...]

    @classmethod
    def parse(cls, texts: Sequence[str]) -> SearchSpace:
        """Parse ``--range`` strings. Raises InvalidInput (none given, a name twice, bad syntax)."""
        if not texts:
            raise InvalidInput(
                "give at least one hyperparameter range to tune (NAME=int:LOW:HIGH, …)"
            )
        ranges = tuple(parse_range(t) for t in texts)
        names = [r.name for r in ranges]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidInput(f"hyperparameter {', '.join(twice)} has more than one range")
        return cls(ranges)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.ranges)

    def texts(self) -> list[str]:
        return [r.text() for r in self.ranges]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {r.name: r.distribution() for r in self.ranges}

    def grid(self) -> dict[str, list[Any]]:
        """The grid search's values per hyperparameter. Raises InvalidInput when too large."""
        size = math.prod(r.grid_count() for r in self.ranges)
        if size > MAX_GRID:
            raise InvalidInput(
                f"the grid has {size:,} points (more than {MAX_GRID:,}); "
                "use bayesian or random search, or coarser steps"
            )
        return {r.name: r.grid() for r in self.ranges}

    @staticmethod
    def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
        return math.prod(len(values) for values in grid.values())

    def check_against(self, specs: Mapping[str, Hyperparameter]) -> None:
        """Check every range against an algorithm's hyperparameters.

        Raises:
            InvalidInput: an unknown hyperparameter, a kind the hyperparameter cannot take, or a
                bound or choice outside what it allows (the message says what is allowed).
        """
        for r in self.ranges:
            spec = specs.get(r.name)
            if spec is None:
                raise InvalidInput(
                    f"unknown hyperparameter {r.name!r} in range {r.text()}; "
                    f"known: {', '.join(specs)}"
                )
            numeric = spec.kind in ("int", "float")
            if r.kind == "float" and spec.kind == "int":
                raise InvalidInput(
                    f"hyperparameter {r.name!r} is an integer: write {r.name}=int:LOW:HIGH"
                )
            if r.kind in ("int", "float") and not numeric:
                raise InvalidInput(
                    f"hyperparameter {r.name!r} must be {spec.allowed()}: "
                    f"tune it with {r.name}=cat:A,B"
                )
            # An int range's bounds as whole numbers (a message said "got 100000000000.0").
            bounds = (int(r.low), int(r.high)) if r.kind == "int" else (r.low, r.high)
            values: Sequence[Any] = r.choices if r.kind == "cat" else bounds
            for value in values:
                try:
                    spec.convert(value)
                except InvalidInput as exc:
                    raise InvalidInput(f"range {r.text()}: {exc.message}") from None
