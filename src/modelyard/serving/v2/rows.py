"""A request's input tensors turned into the rows a model predicts on.

Two forms are accepted for every model:

- **one tensor** of shape ``[n, k]`` (any name; ``input-0`` is how metadata calls it): the rows,
  features in the signature's order. Any numeric datatype is read as float64.
- **one tensor per feature**, named as the signature names it, each ``[n]`` or ``[n, 1]``, in
  any order; one feature may be sent under any name. Text features (signature dtype ``str``,
  ``object``, ``string``) are BYTES.

The rows are a C-contiguous float64 array ``[n, k]`` in the signature's feature order or, when
a feature takes text, a pandas DataFrame with the signature's column names (text columns as
``str``, the others float64). BYTES for a numeric feature, or numbers for a text feature, is a
SignatureMismatch. Without a signature, the tensors' own order and names are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.codecs.json_shapes import NO_ROWS, clip, clip_names, feature_names
from modelyard.domain import Signature
from modelyard.errors import InvalidPayload, SignatureMismatch
from modelyard.serving.v2.datatypes import BYTES, is_text_dtype
from modelyard.serving.v2.elements import count

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.serving.v2.tensors import Tensor

__all__ = ["Layout", "layout", "rows_from_tensors"]


@dataclass(frozen=True, slots=True)
class Layout:
    """How a signature's features look as tensors: names (None if any is unnamed), count and
    which take text."""

    names: tuple[str, ...] | None
    width: int | None
    text: tuple[bool, ...]  # per feature: does it take text?

    @property
    def any_text(self) -> bool:
        return any(self.text)


_NO_SIGNATURE = Layout(None, None, ())
# Per-signature layouts, keyed by id() and holding the signature, as json_shapes does.
_LAYOUTS: dict[int, tuple[Signature, Layout]] = {}


def layout(signature: Signature | None) -> Layout:
    """The (cached) layout of ``signature``; without one, no names and any width."""
    if signature is None or not signature.inputs:
        return _NO_SIGNATURE
    hit = _LAYOUTS.get(id(signature))
    if hit is not None and hit[0] is signature:
        return hit[1]
    text = tuple(is_text_dtype(c.dtype) for c in signature.inputs)
    found = Layout(feature_names(signature), len(signature.inputs), text)
    if len(_LAYOUTS) >= 256:
        _LAYOUTS.clear()
    _LAYOUTS[id(signature)] = (signature, found)
    return found


def rows_from_tensors(tensors: Sequence[Tensor], signature: Signature | None) -> Any:
    """The rows a model predicts on, from a request's input tensors.

    Args:
        tensors: One ``[n, k]`` tensor, or one ``[n]``/``[n, 1]`` tensor per feature.
        signature: The answering model's signature (None: no names, any width).

    Returns:
        A C-contiguous float64 array ``[n, k]`` in the signature's feature order, or a pandas
        DataFrame (signature column names and order) when a feature takes text.

    Raises:
        InvalidPayload: no inputs, no rows, a tensor whose count does not fit its shape,
            shapes that do not fit either form, a feature given twice.
        SignatureMismatch: a width, feature names or element kinds (text vs numbers) other
            than the signature's.
    """
    if not tensors:
        raise InvalidPayload("the request has no input tensors")
    for tensor in tensors:
        _check_count(tensor)
    features = layout(signature)
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        return _from_matrix(tensors[0], features)
    return _from_columns(tensors, features)


def _check_count(tensor: Tensor) -> None:
    data = tensor.data
    size = data.size if isinstance(data, np.ndarray) else len(data)
    if size != count(tensor.shape):
        raise InvalidPayload(
            f"input {clip(tensor.name)}: shape {list(tensor.shape)} holds {count(tensor.shape)} "
            f"elements, data has {size}"
        )


def _from_matrix(tensor: Tensor, features: Layout) -> Any:
    n, k = tensor.shape
    if features.width is not None and k != features.width:
        known = f" {clip_names(features.names)}" if features.names else ""
        raise SignatureMismatch(
            f"input {clip(tensor.name)} has shape {[n, k]}: the model takes {features.width} "
            f"features{known}, so [n, {features.width}]"
        )
    _check_rows(n, k)
    names = _names(features, k)
    if tensor.datatype == BYTES:
        # Without a signature nothing says what the features take: the model decides.
        if features.width is not None and not all(features.text):
            numeric = [name for name, text in zip(names, features.text, strict=True) if not text]
            raise SignatureMismatch(
                f"input {clip(tensor.name)} is BYTES, but these features take numbers: "
                f"{clip_names(numeric)}"
            )
        return _frame({name: _texts(tensor, j, k) for j, name in enumerate(names)})
    if features.any_text:
        texts = [name for name, text in zip(names, features.text, strict=True) if text]
        raise SignatureMismatch(
            f"features {clip_names(texts)} take text: send one tensor per feature, the text "
            "ones as BYTES"
        )
    assert isinstance(tensor.data, np.ndarray)
    return _float_rows(tensor.data.reshape(n, k))


def _from_columns(tensors: Sequence[Tensor], features: Layout) -> Any:
    n = -1
    for tensor in tensors:
        shape = tensor.shape
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidPayload(
                f"input {clip(tensor.name)} has shape {list(shape)}: send one [n, k] tensor, or "
                "one [n] (or [n, 1]) tensor per feature"
            )
        if n < 0:
            n = shape[0]
        elif shape[0] != n:
            raise InvalidPayload(
                f"input {clip(tensor.name)} has {shape[0]} rows, input {clip(tensors[0].name)} "
                f"has {n}: every feature needs the same number"
            )
    ordered = _in_feature_order(tensors, features)
    _check_rows(n, len(ordered))
    names = _names(features, len(ordered)) if features.names else tuple(t.name for t in ordered)
    text = features.text or tuple(t.datatype == BYTES for t in ordered)
    for tensor, name, takes_text in zip(ordered, names, text, strict=True):
        if takes_text and tensor.datatype != BYTES:
            raise SignatureMismatch(
                f"feature {clip(name)} takes text: send it as BYTES, not {tensor.datatype}"
            )
        if not takes_text and tensor.datatype == BYTES:
            raise SignatureMismatch(f"feature {clip(name)} takes numbers, not BYTES")
    if any(text):
        return _frame(
            {
                name: _texts(t, 0, 1) if takes_text else _float_column(t)
                for t, name, takes_text in zip(ordered, names, text, strict=True)
            }
        )
    rows = np.empty((n, len(ordered)), dtype=np.float64)
    for j, tensor in enumerate(ordered):
        rows[:, j] = _float_column(tensor)
    return rows


def _in_feature_order(tensors: Sequence[Tensor], features: Layout) -> list[Tensor]:
    names = features.names
    if names is None:
        width = features.width
        if width is not None and not (width == 1 and len(tensors) == 1):
            raise SignatureMismatch(
                f"the model's {width} features have no names: send one [n, {width}] tensor"
            )
        return list(tensors)
    if len(names) == 1 and len(tensors) == 1:  # one feature: any name will do
        return list(tensors)
    given: dict[str, Tensor] = {}
    for tensor in tensors:
        if tensor.name in given:
            raise InvalidPayload(f"input {clip(tensor.name)} is given twice")
        given[tensor.name] = tensor
    missing = [name for name in names if name not in given]
    if missing or len(given) != len(names):
        known = set(names)
        unexpected = [name for name in given if name not in known]
        parts = []
        if missing:
            parts.append(f"missing features: {clip_names(missing)}")
        if unexpected:
            parts.append(f"unexpected inputs: {clip_names(unexpected)}")
        parts.append(f"the model takes {clip_names(names)} (or one [n, {len(names)}] tensor)")
        raise SignatureMismatch("; ".join(parts))
    return [given[name] for name in names]


def _names(features: Layout, k: int) -> tuple[str, ...]:
    return features.names if features.names is not None else tuple(str(j) for j in range(k))


def _check_rows(n: int, k: int) -> None:
    if n == 0:
        raise InvalidPayload(NO_ROWS)
    if k == 0:
        raise InvalidPayload("the rows hold no values")


def _float_rows(rows: np.ndarray) -> np.ndarray:
    if rows.dtype == np.float64 and rows.flags.c_contiguous and rows.flags.writeable:
        return rows
    return np.array(rows, dtype=np.float64, order="C")  # a copy: raw buffers are read-only


def _float_column(tensor: Tensor) -> np.ndarray:
    assert isinstance(tensor.data, np.ndarray)
    return tensor.data.reshape(-1).astype(np.float64, copy=False)


def _texts(tensor: Tensor, column: int, width: int) -> np.ndarray:
    """Column ``column`` of a BYTES tensor of ``width`` columns, decoded as UTF-8 text."""
    items = tensor.data[column::width]
    try:
        return np.array([item.decode("utf-8") for item in items], dtype=object)
    except UnicodeDecodeError:
        raise InvalidPayload(
            f"input {clip(tensor.name)} holds bytes that are not UTF-8 text"
        ) from None


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    import pandas as pd  # only models with text features need pandas on the request path

    return pd.DataFrame(columns)
