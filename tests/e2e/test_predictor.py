"""The SageMaker SDK workflow from Python against a real ``modelyard serve``: ``Estimator.fit``
→ ``deploy`` → ``predict`` with each serializer pair → ``update_endpoint`` → a model the server
cannot load (a typed error with the reason) → ``delete_endpoint``; and, with no server
running, a clear error as soon as the timeout given runs out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard
from modelyard import (
    CSVDeserializer,
    CSVSerializer,
    Estimator,
    JSONDeserializer,
    JSONSerializer,
    NumpyDeserializer,
    NumpySerializer,
    Predictor,
)
from modelyard.bootstrap import Platform
from modelyard.errors import (
    EndpointNotFound,
    ModelLoadFailed,
    NoServerRunning,
    ServerUnreachable,
    SignatureMismatch,
)
from tests.blobs import corrupt_model_file, unchecked_endpoints
from tests.e2e.conftest import free_port
from tests.waiting import wait_for

HEARTBEAT = {"MODELYARD_SERVER_HEARTBEAT_S": "0.5"}


@pytest.fixture
def iris(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """Iris as a CSV file with a header (target: ``target``), and its feature rows."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    return path, frame.drop(columns=["target"])


def constant_model(rows: pd.DataFrame, label: int) -> Any:
    """A scikit-learn classifier that always answers ``label`` (tells versions apart)."""
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="constant", constant=label).fit(rows, [label] * len(rows))


def test_fit_deploy_predict_update_delete(
    platform: Platform, serve: Any, iris: tuple[Path, pd.DataFrame]
) -> None:
    path, rows = iris
    server = serve(workers=1, **HEARTBEAT)
    est = Estimator(
        "random-forest",
        model_name="iris",
        target="target",
        hyperparameters={"n_estimators": 10},
        platform=platform,
    ).fit(train=str(path))
    predictor = est.deploy(endpoint_name="iris-api", variant_name="main", serving_url=server.url)
    assert isinstance(predictor, Predictor)
    (variant,) = platform.endpoints.get("iris-api").config.variants
    assert (variant.name, variant.model_ref) == ("main", "iris:1")

    sample = rows.head(7)
    local = est.load()
    truth = np.asarray(local.predict(sample), dtype=np.float64)
    local.unload()
    # JSON both ways (the default), with named features from a DataFrame.
    answer = predictor.predict(sample)
    assert predictor.content_type == "application/json"
    np.testing.assert_allclose(answer["predictions"], truth)
    # CSV both ways: headerless rows in, one prediction a line out.
    predictor.serializer, predictor.deserializer = CSVSerializer(), CSVDeserializer()
    answer = predictor.predict(sample.to_numpy())
    np.testing.assert_allclose([float(r[0]) for r in answer], truth)
    # numpy both ways: .npy in, .npy out.
    predictor.serializer, predictor.deserializer = NumpySerializer(), NumpyDeserializer()
    answer = predictor.predict(sample.to_numpy())
    assert isinstance(answer, np.ndarray)
    np.testing.assert_allclose(answer, truth)
    # Mixed: a list as JSON, a numpy array back (from the JSON answer).
    predictor.serializer = JSONSerializer()
    predictor.deserializer = NumpyDeserializer(accept="application/json")
    np.testing.assert_allclose(predictor.predict(sample.to_numpy().tolist()), truth)

    # The server's errors come back typed, with its message.
    with pytest.raises(SignatureMismatch, match="expected 4 features"):
        predictor.predict([[1.0, 2.0]])

    # A new model, then two variants with weights; the wait ends when the server serves it.
    platform.registry.register(
        "iris", constant_model(rows, 2), flavor="sklearn", input_example=rows.head(3)
    )
    predictor.deserializer = JSONDeserializer()
    predictor.update_endpoint("iris:2", variant_name="main")
    assert predictor.predict(sample)["predictions"] == [2] * 7
    predictor.update_endpoint(variants={"a": "iris:1", "b": "iris:2"}, weights={"a": 0, "b": 1})
    assert predictor.predict(sample)["predictions"] == [2] * 7
    np.testing.assert_allclose(predictor.predict(sample, target_variant="a")["predictions"], truth)
    predictor.update_endpoint(weights={"a": 1, "b": 0})  # weights only
    np.testing.assert_allclose(predictor.predict(sample)["predictions"], truth)

    # A model the server cannot load (its blob broke after the caller's check): the wait says
    # so with the reason, and the endpoint keeps answering with what it had.
    restore = corrupt_model_file(platform, "churn:3")
    unchecked_endpoints(platform).update("iris-api", {"main": "churn:3"})
    with pytest.raises(ModelLoadFailed, match="churn:3") as failed:
        predictor.wait(timeout=60)
    assert "corrupt" in str(failed.value).lower() and server.url in str(failed.value)
    np.testing.assert_allclose(predictor.predict(sample)["predictions"], truth)
    restore()

    predictor.delete_endpoint()
    with pytest.raises(EndpointNotFound):
        platform.endpoints.get("iris-api")

    def gone() -> bool:
        try:
            predictor.predict(sample)
        except EndpointNotFound:
            return True
        return False

    wait_for("the server to stop serving the deleted endpoint", gone)
    predictor.close()


def test_no_server_running_is_a_clear_error(platform: Platform) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NoServerRunning, match="modelyard serve"):
        modelyard.deploy(
            "churn:1", endpoint_name="api", serving_url=nowhere, platform=platform, timeout=1
        )
    # The endpoint was written: a server started later serves it.
    assert platform.endpoints.get("api").config.variants[0].model_ref == "churn:1"
    predictor = Predictor("api", serving_url=nowhere, platform=platform)
    with pytest.raises(ServerUnreachable, match="is it running"):
        predictor.predict([[0.0] * 30])
    with pytest.raises(NoServerRunning):
        predictor.wait(timeout=0.5)
    predictor.close()


def test_an_attached_estimator_deploys_the_model_its_job_registered(
    platform: Platform, serve: Any, iris: tuple[Path, pd.DataFrame]
) -> None:
    path, rows = iris
    server = serve(workers=1, **HEARTBEAT)
    Estimator("random-forest", model_name="iris", target="target",
              hyperparameters={"n_estimators": 10}, platform=platform).fit(
        str(path), job_name="iris-run", logs=False
    )  # fmt: skip
    attached = Estimator.attach("iris-run", sagemaker_session=platform)
    predictor = attached.deploy(endpoint_name="iris-api", serving_url=server.url)
    assert platform.endpoints.get("iris-api").config.variants[0].model_ref == "iris:1"
    local = attached.load()
    truth = np.asarray(local.predict(rows.head(5)), dtype=np.float64)
    local.unload()
    np.testing.assert_allclose(predictor.predict(rows.head(5))["predictions"], truth)
    predictor.close()
