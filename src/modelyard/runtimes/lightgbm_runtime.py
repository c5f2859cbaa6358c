"""LightGBM native text models, stored as ``model.txt``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.domain import ColumnSpec, Signature, Trust
from modelyard.domain.signature import listed_names
from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes._common import (
    PICKLE_MAGIC,
    check_width,
    is_dataframe,
    read_head,
    require,
    source_path,
)
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel

FILE_NAME = "model.txt"
#: How every LightGBM text model (``save_model``, ``model_to_string``) begins.
_TEXT_MODEL_HEAD = b"tree\n"

# LightGBM names unnamed features Column_0, Column_1 …; those are not real names.
_AUTO_NAME = re.compile(r"Column_\d+")


def _lgb() -> Any:
    return require("lightgbm", "lightgbm", "lightgbm")


class LightGBMLoaded(LoadedModel):
    """A LightGBM booster; ``predict`` is ``booster.predict`` (probabilities for binary)."""

    def __init__(self, booster: Any) -> None:
        self._booster = booster
        self._n_features = int(booster.num_feature())
        self._errors = (ValueError, _lgb().basic.LightGBMError)

    def predict(self, data: Any) -> np.ndarray:
        """Return ``booster.predict(data)`` (its best iteration, when one was recorded).

        Raises:
            SignatureMismatch: wrong column count or input LightGBM cannot read.
        """
        check_width(data, self._n_features)
        if is_dataframe(data):
            self._check_columns(data.columns)
        try:
            return np.asarray(self._booster.predict(data, num_threads=1))
        except self._errors as exc:
            raise SignatureMismatch(f"lightgbm refused the input: {exc}") from exc

    def stored_feature_name(self, name: str) -> str:
        return name.replace(" ", "_")  # what LightGBM does to a feature name it is given

    def _check_columns(self, columns: Any) -> None:
        """Refuse a frame whose named columns are not the booster's features in its order:
        LightGBM reads a frame by position, so another order would be answered silently wrong.
        """
        known = self._booster.feature_name()
        given = list(columns)
        if all(_AUTO_NAME.fullmatch(str(n)) for n in known) or not all(
            isinstance(c, str) for c in given
        ):
            return  # nothing to match by name: positional, as an array
        stored = [self.stored_feature_name(c) for c in given]
        if stored == known:
            return
        if sorted(stored) == sorted(known):
            raise SignatureMismatch(
                f"the columns are the model's features in another order ({listed_names(given)}); "
                f"LightGBM reads them by position: put them in the model's order "
                f"({listed_names(known)})"
            )
        missing = [n for n in known if n not in stored]
        extra = [c for c, s in zip(given, stored, strict=True) if s not in known]
        raise SignatureMismatch(
            f"the columns do not match the model's features: missing "
            f"{listed_names(missing) or 'none'}, unexpected {listed_names(extra) or 'none'}"
        )

    @property
    def booster(self) -> Any:
        """The lightgbm.Booster (the compiled predictor converts it)."""
        return self._booster

    def signature_hint(self) -> Signature | None:
        names: list[str | None] = list(self._booster.feature_name())
        if all(_AUTO_NAME.fullmatch(str(n)) for n in names):
            names = [None] * self._n_features
        return Signature(inputs=tuple(ColumnSpec(dtype="float64", name=n) for n in names))


class LightGBMRuntime(Runtime):
    """Saves and loads LightGBM boosters.

    ``save`` accepts a path to a native text model file (``booster.save_model``), a
    ``lightgbm.Booster``, or a fitted sklearn-API model (``LGBMClassifier`` …, via
    ``booster_``). The booster is re-written with ``save_model``, which keeps the best
    iteration only when one was recorded (as ``predict`` would use).
    """

    flavor = "lightgbm"

    def save(self, source: Path | object, dest: Path, *, trust: Trust) -> SavedModel:
        lgb = _lgb()
        path = source_path(source)
        if path is not None:
            booster = self._read(lgb, path)
        elif isinstance(source, lgb.Booster):
            booster = source
        elif isinstance(source, lgb.LGBMModel):
            try:
                booster = source.booster_
            except Exception as exc:  # LightGBM's not-fitted error subclasses sklearn's
                raise InvalidModelFile(f"the LightGBM model is not fitted: {exc}") from exc
        else:
            raise InvalidModelFile(
                f"not a LightGBM model: {type(source).__name__} "
                "(expected a model file path, lightgbm.Booster or LGBMModel)"
            )
        booster.save_model(str(dest / FILE_NAME))
        return SavedModel(model_format="text", trust=Trust(), options={})

    def load(self, path: Path, saved: SavedModel) -> LoadedModel:
        return LightGBMLoaded(self._read(_lgb(), path / FILE_NAME))

    @staticmethod
    def _read(lgb: Any, path: Path) -> Any:
        if path.is_dir():
            raise InvalidModelFile(f"not a LightGBM model file: {path} is a folder")
        if read_head(path, 1) == PICKLE_MAGIC:
            raise InvalidModelFile(
                f"{path} is a pickle, not a native LightGBM model; load it in Python and "
                "save it with booster.save_model('model.txt')"
            )
        # LightGBM prints "[LightGBM] [Fatal] …" from C before it raises, whatever its
        # verbosity: a file that does not start as its text models do is refused here, in one
        # line, without it. (One that does but is damaged further on is LightGBM's to judge.)
        if read_head(path, len(_TEXT_MODEL_HEAD)).rstrip(b"\r\n") != _TEXT_MODEL_HEAD.strip():
            raise InvalidModelFile(f"not a LightGBM model file: {path}")
        try:
            return lgb.Booster(model_file=str(path))
        except (lgb.basic.LightGBMError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidModelFile(f"not a LightGBM model file: {path}") from exc
