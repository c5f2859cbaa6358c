"""Training jobs end to end: real worker processes, real stores, real models."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import JobStatus
from modelyard.errors import InvalidInput, InvalidName
from modelyard.storage import packages
from modelyard.training.runner import TrainingOutcome, run_job

SLEEPY_SCRIPT = """
import os, time
print("training forever", flush=True)
time.sleep(120)
"""

CRASHING_SCRIPT = """
import sys
print("about to fail", flush=True)
raise RuntimeError("the data had a problem")
"""


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    yield p
    p.close()


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    folder = tmp_path_factory.mktemp("cancer")
    train, validation = frame.iloc[:450], frame.iloc[450:]
    train.to_csv(folder / "train.csv", index=False)
    validation.to_csv(folder / "validation.csv", index=False)
    return folder / "train.csv", folder / "validation.csv"


def _wait_status(platform: Platform, name: str, wanted: set[JobStatus], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = platform.jobs.get(name)
        if job.status in wanted:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {name} never reached {wanted}: {platform.jobs.get(name)}")


def test_builtin_job_registers_a_version(platform: Platform, cancer_csv: tuple[Path, Path]) -> None:
    train, validation = cancer_csv
    job = platform.training.submit(
        "cancer",
        algorithm="xgboost",
        train=str(train),
        validation=str(validation),
        target="target",
        hyperparameters={"num_round": "20", "max_depth": "3"},
        aliases=("staging",),
    )
    done = platform.jobs.wait(job.name, timeout_s=120)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    assert done.metrics["validation:auc"] > 0.9
    version = platform.registry.get_version("cancer@staging")
    assert version.version == done.model_version
    assert (version.source.kind, version.source.uri) == ("training_job", job.name)
    assert version.params["max_depth"] == "3" and version.metrics == done.metrics
    assert version.signature is not None and version.signature.n_features == 30
    manifest = packages.read_manifest(platform.artifacts, version.artifact_digest)
    assert packages.BASELINE_PROFILE_FILE in {f["path"] for f in manifest["files"]}
    assert "[progress] 20/20" in platform.jobs.logs(job.name)


@pytest.mark.parametrize(
    "algorithm", ["xgboost", "lightgbm", "linear-learner", "random-forest", "kmeans"]
)
def test_registered_version_predicts_like_the_trained_model(
    algorithm: str, platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    from modelyard.domain import Job, JobKind

    train, validation = cancer_csv
    job = Job(
        name=f"inproc-{algorithm}",
        kind=JobKind.TRAINING,
        model_name=f"m-{algorithm}",
        status=JobStatus.IN_PROGRESS,
        spec={
            "algorithm": algorithm,
            "train": str(train),
            "validation": str(validation),
            "target": "target",
            "trust": {},
            "aliases": [],
        },
        hyperparameters={},
        created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
    )
    captured: dict[str, TrainingOutcome] = {}

    def register(outcome: TrainingOutcome) -> Any:
        captured["outcome"] = outcome
        return platform.training._register(job, outcome)

    _, version = run_job(job, tmp_path / "job.log", threading.Event(), register)
    rows = pd.read_csv(validation).drop(columns=["target"])
    loaded = platform.registry.load(version.ref)
    model = captured["outcome"].model
    if algorithm == "xgboost":
        import xgboost as xgb

        want = model.predict(xgb.DMatrix(rows))
    else:
        want = model.predict(rows)
    np.testing.assert_allclose(np.ravel(loaded.predict(rows)), np.ravel(want), rtol=1e-6)
    loaded.unload()


def test_bad_requests_record_nothing(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    train, _ = cancer_csv
    script = tmp_path / "src" / "train.py"
    script.parent.mkdir()
    script.write_text("raise SystemExit('never run')\n")
    attempts: list[tuple[type[Exception], str, Any]] = [
        (InvalidInput, "exactly one", lambda: platform.training.submit("m", train=str(train))),
        (
            InvalidInput,
            "does not exist",
            lambda: platform.training.submit("m", algorithm="xgboost", train="/no/such/file.csv"),
        ),
        (
            InvalidInput,
            "max_depth",
            lambda: platform.training.submit(
                "m", algorithm="xgboost", train=str(train), hyperparameters={"max_depth": "-3"}
            ),
        ),
        (
            InvalidInput,
            "nope",
            lambda: platform.training.submit(
                "m", algorithm="xgboost", train=str(train), hyperparameters={"nope": "1"}
            ),
        ),
        (
            InvalidInput,
            "unknown",
            lambda: platform.training.submit("m", algorithm="deep-magic", train=str(train)),
        ),
        (
            InvalidName,
            "model name",
            lambda: platform.training.submit("bad name", algorithm="xgboost", train=str(train)),
        ),
        # Refused before the job, not once the whole of it has trained.
        (
            InvalidInput,
            "unknown flavor 'tensorflow'",
            lambda: platform.training.submit(
                "m", algorithm="xgboost", train=str(train), flavor="tensorflow"
            ),
        ),
        (  # refused in the worker, once the job had started
            InvalidInput,
            "early_stopping_rounds needs a validation channel",
            lambda: platform.training.submit(
                "m",
                algorithm="xgboost",
                train=str(train),
                hyperparameters={"early_stopping_rounds": "5"},
            ),
        ),
        (
            InvalidInput,
            "the target column's name is empty",
            lambda: platform.training.submit("m", algorithm="xgboost", train=str(train), target=""),
        ),
        (
            InvalidInput,
            "the target must be a column's name, got int 0",
            lambda: platform.training.submit("m", algorithm="xgboost", train=str(train), target=0),  # type: ignore[arg-type]
        ),
        (  # one text, not the aliases p, r, o, d
            InvalidInput,
            "aliases must be a list of names",
            lambda: platform.training.submit(
                "m", algorithm="xgboost", train=str(train), aliases="prod"
            ),
        ),
        (
            # A metric's name is checked by the registry once the script has run.
            InvalidName,
            "invalid metric name 'val auc'",
            lambda: platform.training.submit(
                "m",
                script=str(script),
                train=str(train),
                metric_definitions=["val auc=validation-auc:([0-9.]+)"],
            ),
        ),
    ]
    for error, words, attempt in attempts:
        with pytest.raises(error, match=words):
            attempt()
    assert platform.jobs.list_jobs() == []


def test_failed_jobs_record_why(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    train, _ = cancer_csv
    missing = platform.training.submit(
        "m", algorithm="xgboost", train=str(train), target="no_such_column"
    )
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_SCRIPT)
    crash = platform.training.submit("m", script=str(script), train=str(train))
    missing = platform.jobs.wait(missing.name, timeout_s=120)
    crash = platform.jobs.wait(crash.name, timeout_s=120)
    assert missing.status is JobStatus.FAILED and "no_such_column" in (missing.failure_reason or "")
    assert crash.status is JobStatus.FAILED
    assert "the data had a problem" in (crash.failure_reason or "")
    assert "about to fail" in platform.jobs.logs(crash.name)
    assert platform.registry.list_models() == []


def test_stop_a_running_job(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    train, _ = cancer_csv
    script = tmp_path / "sleepy.py"
    script.write_text(SLEEPY_SCRIPT)
    job = platform.training.submit("m", script=str(script), train=str(train))
    _wait_status(platform, job.name, {JobStatus.IN_PROGRESS})
    deadline = time.monotonic() + 30
    while "training forever" not in platform.jobs.logs(job.name):
        assert time.monotonic() < deadline, platform.jobs.logs(job.name)
        time.sleep(0.2)
    platform.jobs.stop(job.name)
    stopped = _wait_status(platform, job.name, {JobStatus.STOPPED, JobStatus.FAILED}, 30)
    assert stopped.status is JobStatus.STOPPED, stopped.failure_reason


def test_a_killed_worker_leaves_a_failed_job_not_a_stuck_one(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    train, _ = cancer_csv
    script = tmp_path / "sleepy.py"
    script.write_text(SLEEPY_SCRIPT)
    job = platform.training.submit("m", script=str(script), train=str(train))
    running = _wait_status(platform, job.name, {JobStatus.IN_PROGRESS})
    os.killpg(running.pid, signal.SIGKILL)  # the worker and the script it started
    failed = _wait_status(platform, job.name, {JobStatus.FAILED}, 30)
    assert "ended without finishing" in (failed.failure_reason or "")


def test_stop_right_after_submit_ends_stopped(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    train, _ = cancer_csv
    script = tmp_path / "sleepy.py"
    script.write_text(SLEEPY_SCRIPT)
    job = platform.training.submit("m", script=str(script), train=str(train))
    platform.jobs.stop(job.name)  # the worker may not even have started the job yet
    stopped = _wait_status(platform, job.name, {JobStatus.STOPPED, JobStatus.FAILED}, 60)
    assert stopped.status is JobStatus.STOPPED, stopped.failure_reason
