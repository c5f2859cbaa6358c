"""``CompiledTrees``: a tree ensemble run by onnxruntime, answering in the native model's layout.

The converters decide how the ONNX graph's outputs map back onto what the native predictor
returns (``Layout``), and store that mapping inside the ONNX file's metadata, so a cached
conversion carries everything needed to serve it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes._common import check_width, is_dataframe, require
from modelyard.runtimes.base import LoadedModel

LAYOUT_KEY = "modelyard.layout"
ENGINE = "onnxruntime tree ensemble"
TIE = 1e-6  # class probabilities this close count as a tie (float32 transforms' last bits)


@dataclass(frozen=True, slots=True)
class Layout:
    """How to feed the graph and read its answer as the native predictor would give it.

    Attributes:
        input: The graph's input name.
        input_dtype: ``float32`` or ``float64``: the element type the graph takes.
        output: The graph output holding the answer.
        column: Take this column of a 2-D output (binary probability of the positive class).
        ravel: Flatten an ``[n, 1]`` output to ``[n]``.
        dtype: Cast the answer to this numpy dtype (labels to the classes' type).
        n_features: The width the model takes.
        allow_missing: Whether NaN is a legal input (the native model accepted it).
        round_to_float32: Round features to float32 before feeding them (as float64):
            scikit-learn's trees see float32 features, and its sums are float64.
        allow_infinite: Whether ±inf is (scikit-learn refuses it, the boosters take it).
        classifier: The answer is a class label: verified for exact equality.
        labels: For a classifier read from probabilities: the class of each column; the
            answer is the column with the highest probability, unless another is within
            ``tie`` of it: then the native model picks (scikit-learn: the first highest
            float64 probability, or for gradient boosting the decision function's sign or
            first highest score), as the graph's float32 sums cannot tell.
        tie: How far apart two classes' probabilities from the graph may be and still be in
            the other order natively (a bound on the graph's float32 error); None: ``TIE``.
        zero_below: Read values whose magnitude is at most this as 0 (LightGBM drops them
            from a row before predicting, so they take the zero branch).
    """

    input: str
    input_dtype: str
    output: str
    n_features: int
    column: int | None = None
    ravel: bool = False
    dtype: str | None = None
    allow_missing: bool = True
    allow_infinite: bool = True
    round_to_float32: bool = False
    classifier: bool = False
    zero_below: float | None = None
    labels: list[Any] | None = None
    tie: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Layout:
        return cls(**json.loads(text))


def attach_layout(model_proto: Any, layout: Layout) -> bytes:
    """Serialise ``model_proto`` with ``layout`` in its metadata."""
    del model_proto.metadata_props[:]
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = LAYOUT_KEY, layout.to_json()
    return bytes(model_proto.SerializeToString())


def session(onnx_bytes: bytes) -> Any:
    """An onnxruntime session with one thread and quiet logs (it warns on dynamic shapes)."""
    ort = require("onnxruntime", "onnxruntime", "compiled trees")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the onnx flavor: parallelism comes from workers
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's InvalidGraph, NotImplemented, Fail …
        raise InvalidModelFile(f"onnxruntime cannot run the compiled trees: {exc}") from exc


class CompiledTrees(LoadedModel):
    """The compiled predictor. Tables with text columns go to the native model unchanged."""

    def __init__(self, onnx_bytes: bytes, native: LoadedModel) -> None:
        self._session = session(onnx_bytes)
        meta = self._session.get_modelmeta().custom_metadata_map
        if LAYOUT_KEY not in meta:
            raise InvalidModelFile("the compiled trees carry no output layout")
        self.layout = layout = Layout.from_json(meta[LAYOUT_KEY])
        self.native = native
        self.size = len(onnx_bytes)
        self._dtype = np.dtype(layout.input_dtype)
        self._outputs = [layout.output]
        self._out_dtype = None if layout.dtype is None else np.dtype(layout.dtype)
        self._labels = None if layout.labels is None else np.asarray(layout.labels, self._out_dtype)
        self._zero_below = layout.zero_below
        self._tie = TIE if layout.tie is None else layout.tie
        self._strict = not (layout.allow_missing and layout.allow_infinite)

    def predict(self, data: Any) -> np.ndarray:
        """Predict as the native model would.

        Raises:
            SignatureMismatch: wrong width, values that are not numbers, or NaN for a model
                that does not take missing values (as the native model refuses them).
        """
        if is_dataframe(data):
            return self.native.predict(data)
        layout = self.layout
        check_width(data, layout.n_features)
        try:
            with np.errstate(over="ignore"):  # beyond float32: inf, as XGBoost reads it
                if layout.round_to_float32:
                    array = np.asarray(data, dtype=np.float32).astype(self._dtype)
                else:
                    array = np.asarray(data, dtype=self._dtype)
        except (TypeError, ValueError) as exc:
            raise SignatureMismatch(f"the model takes numbers: {exc}") from exc
        if self._zero_below is not None:
            tiny = np.abs(array) <= self._zero_below
            if tiny.any():
                array = np.where(tiny, 0.0, array).astype(self._dtype)
        if self._strict and not np.isfinite(array.sum()):
            if not layout.allow_missing and np.isnan(array).any():
                raise SignatureMismatch("the model does not take missing values (NaN in the input)")
            if not layout.allow_infinite and np.isinf(array).any():
                raise SignatureMismatch("the model does not take infinite values")
        out = self._session.run(self._outputs, {layout.input: array})[0]
        if self._labels is not None:
            return self._classes(out, data)
        if layout.column is not None:
            out = out[:, layout.column]
        elif layout.ravel:
            out = out.reshape(len(out))
        if self._out_dtype is not None and out.dtype != self._out_dtype:
            out = out.astype(self._out_dtype)
        return out

    def _classes(self, probabilities: np.ndarray, data: Any) -> np.ndarray:
        """The class of each row: the most probable one, and for a row where another class is
        within ``tie`` of it, the native model's own choice. scikit-learn decides ties by its
        float64 sums (a forest's tied votes: the first class; a binary gradient boosting
        model: the second class at a decision function of 0), which the float32 graph cannot
        reproduce; such rows are rare but for models built to tie."""
        close = probabilities >= probabilities.max(axis=1, keepdims=True) - self._tie
        labels = self._labels[close.argmax(axis=1)]  # type: ignore[index]
        near = np.flatnonzero(close.sum(axis=1) > 1)
        if near.size:
            labels[near] = np.asarray(self.native.predict(np.asarray(data)[near]))
        return labels

    def signature_hint(self) -> Any:
        return self.native.signature_hint()

    def unload(self) -> None:
        self._session = None
        self.native.unload()
