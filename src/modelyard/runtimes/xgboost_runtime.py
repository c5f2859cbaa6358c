"""XGBoost native models (JSON, UBJSON or legacy binary), stored as ``model.ubj``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.domain import ColumnSpec, Signature, Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes._common import (
    PICKLE_MAGIC,
    check_width,
    read_head,
    require,
    source_path,
)
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel

FILE_NAME = "model.ubj"

# XGBoost's feature-type codes, as numpy-style dtype names for a signature.
_TYPES = {"float": "float32", "q": "float32", "int": "int64", "i": "bool", "c": "category"}


def _xgb() -> Any:
    return require("xgboost", "xgboost", "xgboost")


def _format_of(head: bytes) -> str:
    # JSON and UBJSON both open an object with '{'; JSON's next byte is a quote or whitespace,
    # UBJSON's is a type marker ('L', 'U', '#', ...). Anything else is the legacy binary format.
    stripped = head.lstrip()
    if stripped[:1] == b"{":
        return "json" if stripped[1:2] in (b'"', b"}", b" ", b"\n", b"\r", b"\t") else "ubj"
    return "binary"


class XGBoostLoaded(LoadedModel):
    """A booster answering with its raw output (probabilities for ``binary:logistic``).

    This is what SageMaker's XGBoost container answers: no thresholding to labels and no
    ``best_iteration`` slicing (every tree in the booster is used).
    """

    def __init__(self, booster: Any) -> None:
        # One thread per predict call: XGBoost's default pool costs ~15x on a one-row call
        # (measured: 3.8 ms vs 0.24 ms on 2 cores); parallelism comes from server workers and
        # micro-batching instead.
        booster.set_param({"nthread": 1})
        self._booster = booster
        self._n_features = int(booster.num_features())

    def predict(self, data: Any) -> np.ndarray:
        """Return ``booster.inplace_predict(data)``.

        Raises:
            SignatureMismatch: wrong column count, or feature names that differ from the model's.
        """
        check_width(data, self._n_features)
        try:
            return np.asarray(self._booster.inplace_predict(data))
        except ValueError as exc:
            raise SignatureMismatch(f"xgboost refused the input: {exc}") from exc

    @property
    def booster(self) -> Any:
        """The xgboost.Booster (the compiled predictor converts it)."""
        return self._booster

    def signature_hint(self) -> Signature | None:
        names = self._booster.feature_names or [None] * self._n_features
        types = self._booster.feature_types or ["float"] * self._n_features
        cols = tuple(
            ColumnSpec(dtype=_TYPES.get(t, str(t)), name=n)
            for n, t in zip(names, types, strict=True)
        )
        return Signature(inputs=cols)


class XGBoostRuntime(Runtime):
    """Saves and loads XGBoost boosters.

    ``save`` accepts a path to a native model file (``.json``, ``.ubj``, or a file without an
    extension such as SageMaker's ``xgboost-model``; the format is read from the content), an
    ``xgboost.Booster``, or a fitted sklearn-API model (``XGBClassifier`` …). Pickled models
    are refused: re-save them with ``booster.save_model``.
    """

    flavor = "xgboost"

    def save(self, source: Path | object, dest: Path, *, trust: Trust) -> SavedModel:
        xgb = _xgb()
        path = source_path(source)
        options: dict[str, Any] = {}
        if path is not None:
            booster = self._read(xgb, path)
            options["source_format"] = _format_of(read_head(path))
        elif isinstance(source, xgb.Booster):
            booster = source
        elif isinstance(source, xgb.XGBModel):
            try:
                booster = source.get_booster()
            except Exception as exc:  # sklearn's NotFittedError, whichever module raised it
                raise InvalidModelFile(f"the XGBoost model is not fitted: {exc}") from exc
        else:
            raise InvalidModelFile(
                f"not an XGBoost model: {type(source).__name__} "
                "(expected a model file path, xgboost.Booster or XGBModel)"
            )
        booster.save_model(str(dest / FILE_NAME))
        return SavedModel(model_format="ubj", trust=Trust(), options=options)

    def load(self, path: Path, saved: SavedModel) -> LoadedModel:
        return XGBoostLoaded(self._read(_xgb(), path / FILE_NAME))

    @staticmethod
    def _read(xgb: Any, path: Path) -> Any:
        if path.is_dir():
            raise InvalidModelFile(f"not an XGBoost model file: {path} is a folder")
        raw = path.read_bytes()
        if not raw:  # XGBoost aborts the whole process on an empty buffer
            raise InvalidModelFile(f"not an XGBoost model file: {path} is empty")
        if raw[:1] == PICKLE_MAGIC:
            raise InvalidModelFile(
                f"{path} is a pickle, not a native XGBoost model; load it in Python and "
                "save it with booster.save_model('model.ubj')"
            )
        booster = xgb.Booster()
        try:
            # From bytes, XGBoost detects JSON / UBJSON / binary by content, not by file name.
            booster.load_model(bytearray(raw))
        except (xgb.core.XGBoostError, ValueError) as exc:
            hint = ""
            if _format_of(raw[:16]) == "binary":
                hint = (
                    " (if it is a legacy binary model, re-save it as .ubj with the xgboost "
                    f"version that wrote it; this is xgboost {xgb.__version__})"
                )
            raise InvalidModelFile(f"not an XGBoost model file: {path}{hint}") from exc
        return booster
