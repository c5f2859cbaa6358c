"""Input/output signatures: the columns a model takes and returns."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidInput


def check_column_names(names: Iterable[object], where: str) -> None:
    """Refuse column names holding control characters (ESC, newlines, NUL …): the CLI, the
    logs and the report print feature names, and an escape sequence in one would reach a
    terminal as a command.

    Raises:
        InvalidInput: naming ``where`` and the names (as Python writes them).
    """
    bad = [
        name
        for name in names
        if isinstance(name, str) and any(unicodedata.category(c) == "Cc" for c in name)
    ]
    if bad:
        shown = ", ".join(repr(name) for name in bad[:5]) + (" …" if len(bad) > 5 else "")
        raise InvalidInput(f"{where}: column names must not hold control characters: {shown}")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One input or output column. ``name`` is None when the model does not name its features."""

    dtype: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model version takes and returns.

    ``inputs`` lists the features in column order; ``outputs`` the prediction columns (one entry
    for a 1-D prediction). Shapes use -1 for the batch dimension.
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    output_shape: tuple[int, ...] = (-1,)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.inputs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (-1, len(self.inputs))

    @property
    def feature_names(self) -> list[str] | None:
        names = [c.name for c in self.inputs]
        return None if any(n is None for n in names) else [str(n) for n in names]

    @property
    def input_names(self) -> list[str]:
        """The names the input columns go by wherever rows are kept by name (captured rows,
        baselines, drift profiles): the features' names, or ``"0"``, ``"1"``... by position
        when the model does not name them."""
        return self.feature_names or [str(i) for i in range(len(self.inputs))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        """Rebuild a signature from :meth:`to_dict` output (also accepts user-written JSON).

        Raises:
            ValueError: when a column entry has no ``dtype``.
        """

        def cols(items: list[dict[str, Any]]) -> tuple[ColumnSpec, ...]:
            out = []
            for item in items:
                if "dtype" not in item:
                    raise ValueError(f"signature column {item!r} has no 'dtype'")
                out.append(ColumnSpec(dtype=str(item["dtype"]), name=item.get("name")))
            return tuple(out)

        return cls(
            inputs=cols(data.get("inputs", [])),
            outputs=cols(data.get("outputs", [])),
            output_shape=tuple(data.get("output_shape", [-1])),
        )


def columns_for(target: Signature | None, source: Signature | None) -> tuple[int, ...] | None:
    """Which of ``source``'s input columns, in which order, make ``target``'s inputs: how rows
    decoded for a model of signature ``source`` become rows for a model of signature
    ``target`` (a shadow variant is sent the rows decoded for the production variant it
    shadows).

    Returns None when the rows fit as they are: the same columns in the same order, or a
    signature that says too little to tell (None, no inputs, or features without names, whose
    counts agree). Otherwise the position in ``source`` of each of ``target``'s columns, in
    ``target``'s order: the same names in another order, or fewer of them.

    Raises:
        ValueError: ``target`` takes a named input that ``source`` does not, or (features
            without names) the two take different numbers of them. The message names them.
    """
    if target is None or source is None or not target.inputs or not source.inputs:
        return None
    wanted, given = target.feature_names, source.feature_names
    if wanted is None or given is None:
        if target.n_features != source.n_features:
            raise ValueError(
                f"it takes {target.n_features} features, the rows have {source.n_features}"
            )
        return None
    at = {name: i for i, name in enumerate(given)}
    missing = [name for name in wanted if name not in at]
    if missing:
        inputs = "input" if len(missing) == 1 else "inputs"
        raise ValueError(
            f"it takes {inputs} {listed_names(missing)} that the rows do not have "
            f"(they have {listed_names(given)})"
        )
    order = tuple(at[name] for name in wanted)
    return None if order == tuple(range(len(given))) else order


#: Names listed in a message at most; the rest are counted.
_LISTED = 8


def listed_names(names: Sequence[str]) -> str:
    """``'a', 'b'``, or the first few names and how many there are in all (for messages)."""
    shown = ", ".join(map(repr, names[:_LISTED]))
    return shown if len(names) <= _LISTED else f"{shown}, ... ({len(names)} in all)"
