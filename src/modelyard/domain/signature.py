"""Input/output signatures: the columns a model takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
