"""A version registered by a training job carries a baseline: the profile of its training
features (the model's columns, not the target) and of the model's predictions on them, and
its per-feature ranges are what serving's verification reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Job, JobKind, JobStatus
from modelyard.training.runner import run_job


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    made = build(load_settings({}, home=tmp_path / "home"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    path = tmp_path_factory.mktemp("cancer") / "train.csv"
    data.frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("algorithm", ["xgboost", "kmeans"])
def test_a_trained_version_has_a_baseline_with_predictions(
    algorithm: str, platform: Platform, train_csv: Path, tmp_path: Path
) -> None:
    job = Job(
        name=f"inproc-{algorithm}", kind=JobKind.TRAINING, model_name=f"m-{algorithm}",
        status=JobStatus.IN_PROGRESS,
        spec={"algorithm": algorithm, "train": str(train_csv), "target": "target",
              "trust": {}, "aliases": []},
        hyperparameters={}, created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
    )  # fmt: skip

    def register(outcome: Any) -> Any:
        return platform.training._register(job, outcome)

    _, version = run_job(job, tmp_path / "job.log", threading.Event(), register)
    profile = platform.drift.baseline(version.ref)
    assert profile is not None
    frame = pd.read_csv(train_csv)
    assert version.signature is not None
    assert list(profile.columns) == version.signature.feature_names
    assert "target" not in profile.columns and profile.row_count == len(frame)
    summary = profile.summary()["features"]
    assert summary["mean radius"]["min"] == frame["mean radius"].min()
    assert summary["mean radius"]["max"] == frame["mean radius"].max()
    assert profile.predictions is not None and profile.predictions.row_count == len(frame)
    # Probabilities (xgboost) or cluster numbers (kmeans), as the served model returns them.
    assert {c.kind for c in profile.predictions.column_profiles} == {"numeric"}
