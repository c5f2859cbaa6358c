"""The onnx flavor: .onnx files and ModelProto objects, run by onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelyard.domain import Trust
from modelyard.errors import InvalidModelFile, SignatureMismatch
from modelyard.runtimes import LoadedModel, SavedModel
from modelyard.runtimes.onnx_runtime import OnnxRuntime

RT = OnnxRuntime()


@pytest.fixture(scope="module")
def regression() -> tuple[LinearRegression, onnx.ModelProto, np.ndarray]:
    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x, y)
    return model, to_onnx(model, x[:1].astype(np.float32)), x


def roundtrip(source: object, tmp_path: Path) -> tuple[SavedModel, LoadedModel]:
    dest = tmp_path / "package"
    dest.mkdir(parents=True)
    saved = RT.save(source, dest, trust=Trust())
    assert sorted(p.name for p in dest.iterdir()) == ["model.onnx"]
    return saved, RT.load(dest, saved)


def test_model_proto_round_trip_casts_float64_input(regression, tmp_path) -> None:
    model, proto, x = regression
    saved, loaded = roundtrip(proto, tmp_path)
    assert saved.model_format == "onnx"
    assert saved.options == {"input_name": "X"}
    out = loaded.predict(x)  # float64 in; the model takes tensor(float)
    assert out.shape[0] == len(x)
    np.testing.assert_allclose(out.ravel(), model.predict(x), rtol=1e-4)
    loaded.unload()


def test_onnx_file_and_dataframe_input(regression, tmp_path) -> None:
    model, proto, x = regression
    source = tmp_path / "regressor.onnx"
    source.write_bytes(proto.SerializeToString())
    _, loaded = roundtrip(source, tmp_path / "out")
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(x.shape[1])])
    np.testing.assert_allclose(loaded.predict(frame).ravel(), model.predict(x), rtol=1e-4)


def test_classifier_first_output_is_the_labels(tmp_path) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    clf = LogisticRegression(max_iter=5000).fit(x, y)
    proto = to_onnx(clf, x[:1].astype(np.float32), options={"zipmap": False})
    _, loaded = roundtrip(proto, tmp_path)
    labels = loaded.predict(x)
    agree = (labels == clf.predict(x)).mean()
    assert agree > 0.99  # float32 arithmetic may flip a sample that sits on the boundary


def test_signature_hint_from_input_shape(regression, tmp_path) -> None:
    _, proto, _ = regression
    _, loaded = roundtrip(proto, tmp_path)
    hint = loaded.signature_hint()
    assert hint is not None
    assert hint.n_features == 10
    assert {c.dtype for c in hint.inputs} == {"float32"}


def test_wrong_feature_count_is_a_signature_mismatch(regression, tmp_path) -> None:
    _, proto, x = regression
    _, loaded = roundtrip(proto, tmp_path)
    with pytest.raises(SignatureMismatch, match="expected 10 features, got 4"):
        loaded.predict(x[:, :4])
    with pytest.raises(SignatureMismatch):
        loaded.predict(np.array([["a"] * 10]))


def test_garbage_file_missing_path_and_foreign_object_are_refused(tmp_path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"\x00\x01garbage bytes that are no protobuf model\xff" * 10)
    with pytest.raises(InvalidModelFile, match=r"model\.onnx"):
        RT.save(source, tmp_path, trust=Trust())
    with pytest.raises(InvalidModelFile, match="no such file"):
        RT.save(tmp_path / "absent.onnx", tmp_path, trust=Trust())
    with pytest.raises(InvalidModelFile, match="not an ONNX model: LinearRegression"):
        RT.save(LinearRegression(), tmp_path, trust=Trust())


def test_a_model_with_two_inputs_is_refused(tmp_path) -> None:
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2])
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "g", [a, b], [out])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    with pytest.raises(InvalidModelFile, match=r"2 inputs \(a, b\)"):
        RT.save(proto, tmp_path, trust=Trust())
