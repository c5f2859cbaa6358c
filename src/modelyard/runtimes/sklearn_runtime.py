"""scikit-learn estimators, stored with skops (``model.skops``); pickles only on explicit trust.

skops' loader rebuilds objects from a JSON schema and refuses any type not trusted, so the
default path never unpickles. A pickle/joblib file is accepted only with ``Trust(pickle=True)``
and then stored verbatim as ``model.pkl``.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.domain import ColumnSpec, Signature, Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch, UnsafeModelFormat
from modelyard.runtimes._common import (
    check_width,
    is_dataframe,
    pickle_kind,
    require,
    source_path,
)
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel
from modelyard.runtimes.sklearn_text import text_positions

SKOPS_FILE = "model.skops"
#: Classes a classifier may have for its labels to be recorded (and feedback checked).
MAX_LABELS = 1000
PICKLE_FILE = "model.pkl"
_PICKLE_REFUSED = (
    "{path} is a {kind} file: loading it can run arbitrary code. Register it only if you trust "
    "its author, with --trust-pickle (CLI) or trust=Trust(pickle=True) (Python), or re-save "
    "the estimator with skops.io.dump"
)


class SklearnLoaded(LoadedModel):
    """A fitted estimator. ``predict`` is ``estimator.predict``: classifiers return labels.

    Input is fed the way the estimator was fitted, so sklearn raises no feature-name warning:
    an array gets the fitted column names, a DataFrame loses them if it was fitted without.
    """

    def __init__(self, estimator: Any) -> None:
        self._est = estimator
        self._n_features: int | None = getattr(estimator, "n_features_in_", None)
        names = getattr(estimator, "feature_names_in_", None)
        self._names: list[str] | None = None if names is None else [str(n) for n in names]

    def predict(self, data: Any) -> np.ndarray:
        """Return ``estimator.predict(data)`` as an array.

        Raises:
            SignatureMismatch: wrong column count, wrong column names, or values the
                estimator rejects (sklearn's ValueError).
        """
        check_width(data, self._n_features)
        if self._names is not None and not is_dataframe(data):
            pd = require("pandas", "pandas", "sklearn")
            data = pd.DataFrame(np.asarray(data), columns=self._names)
        elif self._names is None and is_dataframe(data):
            data = data.to_numpy()
        try:
            return np.asarray(self._est.predict(data))
        except ValueError as exc:
            raise SignatureMismatch(f"the estimator refused the input: {exc}") from exc

    @property
    def estimator(self) -> Any:
        """The fitted estimator (the compiled predictor converts it)."""
        return self._est

    def output_labels(self) -> tuple[Any, ...] | None:
        """A classifier's ``classes_`` (a pipeline's, of its last step), when it predicts one
        label per row: what ``predict`` can answer. None for regressors, multi-output
        classifiers, and more than ``MAX_LABELS`` classes (too many to check labels against)."""
        from sklearn.base import is_classifier

        classes = getattr(self._est, "classes_", None) if is_classifier(self._est) else None
        if classes is None:
            return None
        values = np.asarray(classes, dtype=object)
        if values.ndim != 1 or not 0 < len(values) <= MAX_LABELS:
            return None
        return tuple(v.item() if isinstance(v, np.generic) else v for v in values)

    def signature_hint(self) -> Signature | None:
        if self._n_features is None:
            return None
        names: list[str | None] = [None] * self._n_features
        if self._names is not None:
            names = list(self._names)
        # Columns its encoders learnt text from are text; the rest, as far as it says, numbers.
        text = text_positions(self._est, self._n_features, self._names)
        return Signature(
            inputs=tuple(
                ColumnSpec(dtype="object" if j in text else "float64", name=n)
                for j, n in enumerate(names)
            )
        )


class SklearnRuntime(Runtime):
    """Saves and loads scikit-learn estimators (pipelines included).

    ``save`` accepts a ``.skops`` file, a fitted estimator (dumped with skops), or a
    pickle/joblib file (found by content, whatever its name), which needs ``trust.pickle``.
    skops types outside its default trusted set (e.g. ``sklearn.tree._tree.Tree`` for any
    tree model) must be listed in ``trust.types``; the saved trust records those needed.
    """

    flavor = "sklearn"

    def save(self, source: Path | object, dest: Path, *, trust: Trust) -> SavedModel:
        sio = require("skops.io", "skops", self.flavor)
        path = source_path(source)
        target = dest / SKOPS_FILE
        if path is None:
            self._dump(source, target, sio)
        elif path.is_file() and zipfile.is_zipfile(path):
            shutil.copyfile(path, target)
        elif path.is_file() and (kind := pickle_kind(path)) is not None:
            if not trust.pickle:
                raise UnsafeModelFormat(_PICKLE_REFUSED.format(path=path, kind=kind))
            shutil.copyfile(path, dest / PICKLE_FILE)
            return SavedModel("pickle", Trust(pickle=True), {"source_format": kind})
        else:
            raise InvalidModelFile(f"not a scikit-learn model file (skops or pickle): {path}")
        try:
            needed = sorted(sio.get_untrusted_types(file=target))
        except Exception as exc:  # a zip that is not a skops file: KeyError, JSON errors …
            target.unlink()
            raise InvalidModelFile(f"not a skops model file: {path or 'estimator'}") from exc
        missing = [t for t in needed if t not in trust.types]
        if missing:
            target.unlink()
            raise UnsafeModelFormat(
                f"the skops file holds types that are not trusted by default: "
                f"{', '.join(missing)}. Trust them after review with --trust-type TYPE (CLI) "
                f"or trust=Trust(types=({', '.join(repr(t) for t in missing)},)) (Python)"
            )
        return SavedModel("skops", Trust(types=tuple(needed)), {})

    def load(self, path: Path, saved: SavedModel) -> LoadedModel:
        if saved.model_format == "skops":
            sio = require("skops.io", "skops", self.flavor)
            errors = require("skops.io.exceptions", "skops", self.flavor)
            try:
                estimator = sio.load(path / SKOPS_FILE, trusted=list(saved.trust.types))
            except errors.UntrustedTypesFoundException as exc:
                raise UnsafeModelFormat(f"the skops file holds untrusted types: {exc}") from exc
            except Exception as exc:  # a damaged archive or schema
                raise InvalidModelFile(f"cannot read {path / SKOPS_FILE}: {exc}") from exc
        elif saved.model_format == "pickle":
            if not saved.trust.pickle:
                raise UnsafeModelFormat(
                    _PICKLE_REFUSED.format(path=path / PICKLE_FILE, kind="pickle")
                )
            joblib = require("joblib", "joblib", self.flavor)
            try:
                estimator = joblib.load(path / PICKLE_FILE)  # trust.pickle granted: runs code
            except Exception as exc:  # anything the unpickled code raises
                raise InvalidModelFile(f"cannot unpickle {path / PICKLE_FILE}: {exc}") from exc
        else:
            raise InvalidModelFile(f"unknown sklearn model format {saved.model_format!r}")
        if not callable(getattr(estimator, "predict", None)):
            raise InvalidModelFile(f"{type(estimator).__name__} in {path} has no predict()")
        return SklearnLoaded(estimator)

    @staticmethod
    def _dump(estimator: object, target: Path, sio: Any) -> None:
        base = require("sklearn.base", "scikit-learn", "sklearn")
        validation = require("sklearn.utils.validation", "scikit-learn", "sklearn")
        if not isinstance(estimator, base.BaseEstimator) or not hasattr(estimator, "predict"):
            raise InvalidModelFile(
                f"not a scikit-learn estimator: {type(estimator).__name__} "
                "(expected a .skops or pickle file path, or a fitted estimator with predict)"
            )
        try:
            validation.check_is_fitted(estimator)
        except Exception as exc:  # NotFittedError
            raise InvalidModelFile(f"the estimator is not fitted: {exc}") from exc
        try:
            sio.dump(estimator, target)
        except Exception as exc:  # skops' UnsupportedTypeException, TypeError …
            raise InvalidModelFile(
                f"skops cannot save this {type(estimator).__name__} ({exc}); save it with "
                "joblib and register the file with pickle trust instead"
            ) from exc
