"""ONNX models, run with onnxruntime on CPU, stored as one self-contained ``model.onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.domain import ColumnSpec, Signature, Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes._common import check_width, is_dataframe, require, source_path
from modelyard.runtimes.base import LoadedModel, Runtime, SavedModel

FILE_NAME = "model.onnx"

# ONNX tensor element types and the numpy dtype a request is cast to before feeding.
_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def _ort() -> Any:
    return require("onnxruntime", "onnxruntime", "onnx")


def _session(model_bytes: bytes, origin: object) -> Any:
    ort = _ort()
    options = ort.SessionOptions()
    # One thread per session: a server runs many sessions (variants, replicas, batch workers)
    # and onnxruntime's default of one thread per core makes them fight over the CPU.
    # Throughput scales with replicas/processes instead.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's InvalidProtobuf, InvalidGraph, Fail, NoSuchFile …
        raise InvalidModelFile(f"not a runnable ONNX model: {origin} ({exc})") from exc


class OnnxLoaded(LoadedModel):
    """An onnxruntime session. ``predict`` feeds the model's single input and returns its
    first output (for skl2onnx classifiers: the labels; pass ``zipmap=False`` when
    converting to get plain arrays for every output)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        inp = session.get_inputs()[0]
        self._input = inp.name
        self._type = inp.type
        self._dtype = _DTYPES.get(inp.type)
        shape = list(inp.shape)
        # Only a rank-2 input with a fixed last dimension is a "rows x features" table.
        fixed = len(shape) == 2 and isinstance(shape[1], int)
        self._n_features: int | None = shape[1] if fixed else None
        self._tabular = len(shape) == 2
        self._output = session.get_outputs()[0].name
        self._invalid = _ort().capi.onnxruntime_pybind11_state.InvalidArgument

    def predict(self, data: Any) -> np.ndarray:
        """Cast ``data`` to the input's element type, run, and return the first output.

        Raises:
            SignatureMismatch: wrong width, values that cannot be cast, or input onnxruntime
                rejects.
        """
        if self._tabular:
            check_width(data, self._n_features)
        array = data.to_numpy() if is_dataframe(data) else data
        try:
            array = np.asarray(array, dtype=self._dtype)
            out = self._session.run([self._output], {self._input: array})
        except (ValueError, TypeError, self._invalid) as exc:
            raise SignatureMismatch(
                f"the ONNX model refused the input ({self._type}): {exc}"
            ) from exc
        return np.asarray(out[0])

    def signature_hint(self) -> Signature | None:
        if self._n_features is None:
            return None
        dtype = np.dtype(self._dtype).name if self._dtype is not None else self._type
        return Signature(inputs=tuple(ColumnSpec(dtype=dtype) for _ in range(self._n_features)))

    def unload(self) -> None:
        self._session = None


class OnnxRuntime(Runtime):
    """Saves and loads ONNX models.

    ``save`` accepts a ``.onnx`` file (external weight files next to it are inlined) or an
    ``onnx.ModelProto``. The model is checked by opening an onnxruntime session; models with
    more than one input are refused, since a request carries a single table.
    """

    flavor = "onnx"

    def save(self, source: Path | object, dest: Path, *, trust: Trust) -> SavedModel:
        onnx = require("onnx", "onnx", self.flavor)
        path = source_path(source)
        if path is not None:
            try:
                proto = onnx.load(str(path))
            except Exception as exc:  # protobuf's DecodeError, a folder, missing external data
                raise InvalidModelFile(f"not an ONNX model file: {path} ({exc})") from exc
        elif isinstance(source, onnx.ModelProto):
            proto = source
        else:
            raise InvalidModelFile(
                f"not an ONNX model: {type(source).__name__} (expected a .onnx path or ModelProto)"
            )
        raw = proto.SerializeToString()
        inputs = _session(raw, path or "ModelProto").get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs) or "none"
            raise InvalidModelFile(
                f"the ONNX model takes {len(inputs)} inputs ({names}); modelyard feeds exactly one"
            )
        (dest / FILE_NAME).write_bytes(raw)
        return SavedModel("onnx", Trust(), {"input_name": inputs[0].name})

    def load(self, path: Path, saved: SavedModel) -> LoadedModel:
        file = path / FILE_NAME
        return OnnxLoaded(_session(file.read_bytes(), file))
