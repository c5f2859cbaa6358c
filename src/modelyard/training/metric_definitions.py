"""Metrics read from a training script's log, the way SageMaker's ``metric_definitions`` work.

A :class:`MetricDefinition` is a name and a regular expression with one capture group; every
log line is searched and the captured number becomes a value of that metric. The boosting
libraries' own evaluation lines (``[12]\\ttrain-logloss:0.1\\tvalidation-auc:0.97``) carry
their metric names in the line itself, so they are read by :class:`EvalLogScanner` instead of
a fixed regex; it is on by default (:data:`DEFAULT_DEFINITIONS`). Lines such as ``rmse=0.41``
or ``rmse: 0.41`` are read only for names a definition asks for (:func:`key_value_definition`):
guessing at arbitrary ``word: number`` lines would record noise (epochs, row counts, ports).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from modelyard.domain.references import validate_metric_name
from modelyard.errors import InvalidInput

__all__ = [
    "DEFAULT_DEFINITIONS",
    "EvalLogScanner",
    "LineScanner",
    "MetricDefinition",
    "MetricScanner",
    "key_value_definition",
    "parse_metric_definition",
]

# A decimal or scientific number, as the libraries print them (nan/inf are read, then dropped).
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"


class LineScanner(Protocol):
    """Anything that finds metrics in one log line."""

    def scan(self, line: str) -> dict[str, float]:
        """The metrics this line holds (name → value); empty when none."""
        ...


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """One metric read from the log: ``name`` and a regex whose single group is the value.

    Raises:
        InvalidInput: an empty name, a regex that does not compile, or one without exactly
            one capture group (the message names the definition). InvalidName: a name a
            model version's metric cannot have.
    """

    name: str
    regex: str
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidInput(f"metric definition with regex {self.regex!r} has no name")
        # The metrics become the registered version's, whose names the registry checks:
        # refused when the job is submitted, not once the script has run.
        validate_metric_name(self.name)
        try:
            compiled = re.compile(self.regex)
        except re.error as exc:
            raise InvalidInput(
                f"metric definition {self.name!r}: regex {self.regex!r} does not compile ({exc})"
            ) from exc
        if compiled.groups != 1:
            raise InvalidInput(
                f"metric definition {self.name!r}: regex {self.regex!r} must have exactly one "
                f"capture group (the value), it has {compiled.groups}"
            )
        object.__setattr__(self, "_pattern", compiled)  # frozen: set once, here

    def scan(self, line: str) -> dict[str, float]:
        """The first match's captured value in ``line``, as ``{name: value}``."""
        match = self._pattern.search(line)
        if match is None:
            return {}
        value = _number(match.group(1))
        return {} if value is None else {self.name: value}


def key_value_definition(name: str, key: str | None = None) -> MetricDefinition:
    """A definition reading lines printed as ``key=value`` or ``key: value``.

    Args:
        name: The metric's name.
        key: The word printed in the log; defaults to ``name``.
    """
    word = re.escape(key or name)
    return MetricDefinition(name, rf"(?<![\w.-]){word}\s*(?:=|:)\s*({NUMBER})")


def parse_metric_definition(text: str) -> MetricDefinition:
    """Parse ``NAME=REGEX`` (split at the first ``=``), or a bare ``NAME``.

    A bare name asks for ``NAME=value`` / ``NAME: value`` lines (:func:`key_value_definition`).

    Raises:
        InvalidInput: an empty name or regex, or a regex :class:`MetricDefinition` refuses.
    """
    name, sep, regex = text.partition("=")
    name = name.strip()
    if not sep:
        if not name or any(c.isspace() for c in name):
            raise InvalidInput(
                f"invalid metric definition {text!r}: expected NAME=REGEX or a metric name"
            )
        return key_value_definition(name)
    if not name or not regex:
        raise InvalidInput(f"invalid metric definition {text!r}: expected NAME=REGEX")
    return MetricDefinition(name, regex)


class EvalLogScanner:
    """Reads XGBoost's and LightGBM's evaluation lines, whose metric names are in the line.

    ``[12]\\ttrain-logloss:0.1\\tvalidation-auc:0.97`` gives ``train:logloss`` and
    ``validation:auc`` (SageMaker's naming); LightGBM's ``[12]\\tvalid_0's auc: 0.97`` gives
    ``valid_0:auc``. XGBoost's name is ``<eval set>-<metric>``; the split is at the first
    ``-``, as metric names may hold one (``map@3-``, ``aft-nloglik``) far more often than the
    eval set names a script passes (``train``, ``validation``).
    """

    _LINE = re.compile(r"^\s*\[\d+\]\s+(.*)$")
    _XGB = re.compile(rf"^([^\s:'-][^\s:']*?)-(\S+):({NUMBER})$")
    _LGB = re.compile(rf"([^\s']+)'s\s+(\S+?):\s*({NUMBER})(?=\s|$)")

    def scan(self, line: str) -> dict[str, float]:
        """Every ``set-metric:value`` (or ``set's metric: value``) pair of an eval line."""
        head = self._LINE.match(line)
        if head is None:
            return {}
        body = head.group(1)
        found: dict[str, float] = {}
        if "'s " in body:
            for data_set, metric, raw in self._LGB.findall(body):
                _put(found, f"{data_set}:{metric}", raw)
            return found
        for token in body.split():
            match = self._XGB.match(token)
            if match is not None:
                _put(found, f"{match.group(1)}:{match.group(2)}", match.group(3))
        return found


DEFAULT_DEFINITIONS: tuple[LineScanner, ...] = (EvalLogScanner(),)


class MetricScanner:
    """Scans a run's log lines with every definition, keeping each metric's values.

    Explicit definitions are applied after the defaults, so they win for a shared name.

    Attributes:
        history: Every value seen, per metric, in log order.
    """

    def __init__(
        self, definitions: Iterable[LineScanner], *, include_defaults: bool = True
    ) -> None:
        self._scanners: list[LineScanner] = list(DEFAULT_DEFINITIONS) if include_defaults else []
        self._scanners.extend(definitions)
        self.history: dict[str, list[float]] = {}
        self._last: dict[str, float] = {}

    def feed(self, line: str) -> dict[str, float]:
        """The metrics found in ``line`` (also recorded in :attr:`history`)."""
        found: dict[str, float] = {}
        for scanner in self._scanners:
            found.update(scanner.scan(line))
        for name, value in found.items():
            self.history.setdefault(name, []).append(value)
            self._last[name] = value
        return found

    def final(self) -> dict[str, float]:
        """Each metric's last value over the run."""
        return dict(self._last)


def _number(raw: str) -> float | None:
    # Non-finite values are dropped: they are not a measurement and JSON cannot hold them.
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _put(found: dict[str, float], name: str, raw: str) -> None:
    value = _number(raw)
    if value is not None:
        found[name] = value
