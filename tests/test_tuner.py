"""``HyperparameterTuner``: tuning jobs from Python, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard import Estimator
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import InvalidInput
from modelyard.tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperparameterTuner,
    IntegerParameter,
)


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    yield p
    p.close()


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    folder = tmp_path_factory.mktemp("cancer")
    frame.iloc[:400].to_csv(folder / "train.csv", index=False)
    frame.iloc[400:].to_csv(folder / "val.csv", index=False)
    return folder / "train.csv", folder / "val.csv"


def _estimator(platform: Platform, **hyperparameters: Any) -> Estimator:
    return Estimator("xgboost", model_name="cancer", target="target",
                     hyperparameters={"num_round": 10, **hyperparameters},
                     platform=platform)  # fmt: skip


def test_fit_tunes_registers_the_best_and_loads_it(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    train, val = cancer_csv
    tuner = HyperparameterTuner(
        _estimator(platform),
        "validation:logloss",
        {
            "max_depth": IntegerParameter(2, 5),
            "eta": ContinuousParameter(0.05, 0.3, scaling_type="Logarithmic"),
        },
        max_jobs=4,
        max_parallel_jobs=2,
        random_seed=3,
    )
    assert tuner.fit(train=str(train), validation=str(val)) is tuner

    assert tuner.job_.status.value == "Completed"
    assert len(tuner.trials_) == 4
    assert {t["state"] for t in tuner.trials_} == {"Completed"}
    for trial in tuner.trials_:
        assert 2 <= int(trial["hyperparameters"]["max_depth"]) <= 5
        assert 0.05 <= float(trial["hyperparameters"]["eta"]) <= 0.3
    # logloss is minimised (inferred from its name): the best is the smallest value.
    assert tuner.best_value_ == min(t["value"] for t in tuner.trials_)
    best = next(t for t in tuner.trials_ if t["name"] == tuner.best_training_job_)
    assert best["value"] == tuner.best_value_
    assert tuner.best_hyperparameters_ == best["hyperparameters"]
    assert tuner.best_hyperparameters_["num_round"] == "10"

    version = tuner.model_version_
    assert version is not None and version.ref == "cancer:1"
    assert version.source.kind == "tuning_job"
    assert version.source.uri == f"{tuner.job_.name}/{tuner.best_training_job_}"
    assert version.metrics["validation:logloss"] == tuner.best_value_
    assert [v.version for v in platform.registry.list_versions("cancer")] == [1]
    trials = [j for j in platform.jobs.list_jobs() if j.parent == tuner.job_.name]
    assert len(trials) == 4 and all(j.model_version is None for j in trials)

    rows = pd.read_csv(val).drop(columns=["target"])
    model = platform.registry.load(version.ref)
    try:
        predicted = np.asarray(model.predict(rows))
    finally:
        model.unload()
    assert predicted.shape == (len(rows),)
    assert ((predicted >= 0) & (predicted <= 1)).all()
    labels = pd.read_csv(val)["target"].to_numpy()
    assert ((predicted > 0.5) == labels).mean() > 0.9


def test_categorical_ranges_and_an_explicit_direction(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    train, val = cancer_csv
    tuner = HyperparameterTuner(
        _estimator(platform, eta=0.2),
        "validation:auc",
        {"max_depth": CategoricalParameter([2, 4])},
        objective_type="Minimize",  # perverse on purpose: the direction given wins
        strategy="Random",
        max_jobs=3,
        random_seed=5,
    ).fit({"train": str(train), "validation": val})  # the SageMaker SDK's inputs
    values = [t["value"] for t in tuner.trials_]
    assert len(values) == 3 and None not in values
    assert {t["hyperparameters"]["max_depth"] for t in tuner.trials_} <= {"2", "4"}
    assert tuner.best_value_ == min(values)
    summary = platform.tuning.summary(tuner.job_.name)
    assert (summary.config.direction, summary.config.strategy) == ("minimize", "random")
    assert tuner.model_version_ is not None
    assert tuner.model_version_.params["max_depth"] == tuner.best_hyperparameters_["max_depth"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "Annealing"}, "unknown strategy 'Annealing'"),
        ({"objective_type": "Biggest"}, "objective_type must be 'Maximize' or 'Minimize'"),
        ({"early_stopping_type": "Sometimes"}, "early_stopping_type must be 'Off' or 'Auto'"),
        ({"max_jobs": 0}, "the number of trials must be in"),
    ],
)
def test_a_bad_request_raises_before_anything_is_submitted(
    platform: Platform, cancer_csv: tuple[Path, Path], options: dict[str, Any], message: str
) -> None:
    train, val = cancer_csv
    tuner = HyperparameterTuner(
        _estimator(platform), "validation:logloss", {"max_depth": IntegerParameter(2, 5)},
        **options,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=message):
        tuner.fit(train=str(train), validation=str(val))
    assert not hasattr(tuner, "job_")
    assert platform.jobs.list_jobs() == []
    assert platform.registry.list_models() == []


def test_a_range_the_algorithm_refuses_raises_before_anything_is_submitted(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    train, _ = cancer_csv
    tuner = HyperparameterTuner(
        _estimator(platform), "validation:logloss", {"eta": ContinuousParameter(0.1, 2.0)}
    )
    with pytest.raises(InvalidInput, match=r"eta.*\[0, 1\]"):
        tuner.fit(train=str(train))
    assert platform.jobs.list_jobs() == []


def test_parameter_ranges_follow_the_sagemaker_scaling_types() -> None:
    from modelyard.tuner import CategoricalParameter as Cat
    from modelyard.tuner import ContinuousParameter as Cont

    assert Cont(0.01, 0.3, scaling_type="Logarithmic").as_range("eta") == "eta=float:0.01:0.3:log"
    assert Cont(0.5, 1, scaling_type="Linear").as_range("s") == "s=float:0.5:1"
    assert Cat("gbtree").as_range("booster") == "booster=cat:gbtree"  # one value, not letters
    with pytest.raises(InvalidInput, match="'ReverseLogarithmic'"):
        Cont(0.1, 1, scaling_type="ReverseLogarithmic").as_range("eta")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="comma"):
        Cat(["a,b", "c"]).as_range("x")


# The end of a script: it leaves a pyfunc model that returns its input.
PYFUNC_MODEL = """
import os
from pathlib import Path

Path(os.environ["SM_MODEL_DIR"], "model.py").write_text(
    "class Model:\\n"
    "    def load(self, artifacts_dir):\\n"
    "        pass\\n"
    "    def predict(self, data):\\n"
    "        return data\\n"
)
"""

SCORE_SCRIPT = """
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int)
print(f"score={parser.parse_args().depth / 10}", flush=True)
"""


def _script_estimator(platform: Platform, tmp_path: Path, code: str, name: str) -> Estimator:
    script = tmp_path / "src" / "train.py"
    script.parent.mkdir()
    script.write_text(code + PYFUNC_MODEL)
    return Estimator(script=str(script), model_name=name, flavor="pyfunc", trust_code=True,
                     platform=platform)  # fmt: skip


def test_a_script_tuned_with_the_sagemaker_sdks_metric_definitions(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    tuner = HyperparameterTuner(
        _script_estimator(platform, tmp_path, SCORE_SCRIPT, "scored"),
        "validation:score",
        {"depth": CategoricalParameter([3, 7])},
        [{"Name": "validation:score", "Regex": "score=([0-9.]+)"}],  # the SDK's 4th argument
        objective_type="Maximize",
        strategy="Grid",
        max_jobs=2,
    )
    tuner.fit(str(cancer_csv[0]))
    assert sorted(t["value"] for t in tuner.trials_) == [0.3, 0.7]
    assert tuner.best_value_ == 0.7 and tuner.best_hyperparameters_ == {"depth": "7"}


TYPES_SCRIPT = """
import json
import os

hps = json.loads(os.environ["SM_HPS"])
print(f"types={type(hps['label']).__name__},{type(hps['flag']).__name__}", flush=True)
print(f"score={int(hps['label'] == '123' and hps['flag'] is False)}", flush=True)
"""


def test_a_scripts_categorical_values_reach_it_as_given(
    platform: Platform, cancer_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    # The SageMaker SDK sends a script-mode estimator's categorical values JSON-encoded
    # (CategoricalParameter.as_json_range), as it sends its fixed hyperparameters: the string
    # '123' stays a string and False stays false, not the number 123 and the truthy 'False'.
    tuner = HyperparameterTuner(
        _script_estimator(platform, tmp_path, TYPES_SCRIPT, "typed"),
        "score",
        {"label": CategoricalParameter(["123"]), "flag": CategoricalParameter([False])},
        ["score=score=([0-9]+)"],
        objective_type="Maximize",
        max_jobs=1,
    )
    tuner.fit(str(cancer_csv[0]))
    assert tuner.best_training_job_ is not None
    assert tuner.best_value_ == 1, platform.jobs.logs(tuner.best_training_job_)
    assert tuner.best_hyperparameters_ == {"label": '"123"', "flag": "false"}


def test_a_none_fixed_hyperparameter_of_a_built_in_sets_nothing(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    # As the SageMaker SDK's built-in estimators send none: eta=None fixes nothing, so eta
    # may be tuned, and the job records no "null" that its trials would fail on.
    train, val = cancer_csv
    tuner = HyperparameterTuner(
        _estimator(platform, eta=None), "validation:logloss",
        {"eta": ContinuousParameter(0.1, 0.3)}, max_jobs=1,
    )  # fmt: skip
    tuner.fit(train=str(train), validation=str(val), wait=False)
    assert dict(tuner.job_.hyperparameters) == {"num_round": "10"}
    tuner.stop()
    assert platform.tuning.wait(tuner.job_.name, timeout_s=120).status.finished


@pytest.mark.parametrize(
    ("ranges", "options", "message"),
    [
        ({"eta": ContinuousParameter("a", 0.3)}, {}, r"'eta'.*min_value.*a number.*'a'"),  # type: ignore[arg-type]
        ({"eta": ContinuousParameter(0.1, None)}, {}, r"'eta'.*max_value.*a number.*None"),  # type: ignore[arg-type]
        ({"max_depth": IntegerParameter(1, 10**400)}, {}, r"'max_depth'.*max_value"),
        ({"max_depth": IntegerParameter(1, 2.5)}, {}, r"'max_depth'.*max_value.*whole"),  # type: ignore[arg-type]
        ({"max_depth": IntegerParameter(True, 5)}, {}, r"'max_depth'.*min_value.*True"),
        ({"eta": 0.1}, {}, r"'eta'.*a parameter range.*float"),
        ([IntegerParameter(2, 5)], {}, r"hyperparameter_ranges must be a dict.*list"),
        ({"max_depth": IntegerParameter(2, 5)}, {"strategy": None}, r"strategy.*None"),
        ({"max_depth": IntegerParameter(2, 5)}, {"max_jobs": "3"}, r"number of trials.*'3'"),
        ({"max_depth": IntegerParameter(2, 5)}, {"max_jobs": True}, r"number of trials.*True"),
        ({"max_depth": IntegerParameter(2, 5)}, {"max_parallel_jobs": 2.5}, r"parallel.*2\.5"),
        ({"max_depth": IntegerParameter(2, 5)}, {"max_failed_jobs": 1.5}, r"failed.*1\.5"),
        ({"max_depth": IntegerParameter(2, 5)}, {"random_seed": "7"}, r"seed.*'7'"),
    ],
)
def test_bad_arguments_name_themselves_before_anything_is_submitted(
    platform: Platform,
    cancer_csv: tuple[Path, Path],
    ranges: Any,
    options: dict[str, Any],
    message: str,
) -> None:
    train, val = cancer_csv
    tuner = HyperparameterTuner(_estimator(platform), "validation:logloss", ranges, **options)
    with pytest.raises(InvalidInput, match=message):
        tuner.fit(train=str(train), validation=str(val))
    assert platform.jobs.list_jobs() == []


def test_fit_names_the_tuning_job_and_attach_finds_it_again(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    train, val = cancer_csv
    tuner = HyperparameterTuner(
        _estimator(platform, subsample=0.8),
        "validation:logloss",
        {"max_depth": IntegerParameter(2, 4), "eta": CategoricalParameter([0.1, 0.3])},
        max_jobs=2,
        strategy="Random",
        random_seed=5,
    )
    tuner.fit(str(train), validation=str(val), job_name="cancer-tune", wait=False)
    assert tuner.job_.name == "cancer-tune"
    # Attached while it runs: the request is the job's; wait() learns the result.
    running = HyperparameterTuner.attach("cancer-tune", sagemaker_session=platform)
    assert running.objective_metric_name == "validation:logloss"
    assert running.objective_type == "Minimize" and running.strategy == "Random"
    assert (running.max_jobs, running.max_parallel_jobs, running.random_seed) == (2, 1, 5)
    assert running.hyperparameter_ranges == {
        "max_depth": "max_depth=int:2:4", "eta": "eta=cat:0.1,0.3"
    }  # fmt: skip
    est = running.estimator
    assert (est.algorithm, est.model_name, est.target) == ("xgboost", "cancer", "target")
    assert est.hyperparameters == {"num_round": "10", "subsample": "0.8"}
    assert running.wait() is running
    assert running.model_version_ is not None and running.model_version_.ref == "cancer:1"
    assert {t["name"] for t in running.trials_} == {"cancer-tune-000", "cancer-tune-001"}
    # Attached once it ended: learned at once, as fit learns.
    done = HyperparameterTuner.attach("cancer-tune", platform)
    assert done.best_training_job_ == running.best_training_job_
    assert done.best_value_ == running.best_value_ and done.trials_ == running.trials_
    # The attached tuner runs the same request again, under a new name.
    assert done.fit(str(train), validation=str(val), job_name="cancer-tune-2").model_version_
    assert platform.tuning.get("cancer-tune-2").spec["tuning"] == {
        **platform.tuning.get("cancer-tune").spec["tuning"], "seed": 5
    }  # fmt: skip


def test_the_sdks_best_estimator_and_deploy_serve_the_best_trials_model(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    from modelyard import Predictor

    train, val = cancer_csv
    tuner = HyperparameterTuner(_estimator(platform), "validation:logloss",
                                {"max_depth": IntegerParameter(2, 4)}, max_jobs=2,
                                strategy="Random", random_seed=1)  # fmt: skip
    with pytest.raises(ValueError, match="no tuning job yet"):
        tuner.best_training_job()
    tuner.fit(str(train), validation=str(val), job_name="tune")
    assert tuner.best_training_job() == tuner.best_training_job_
    best = tuner.best_estimator()
    assert isinstance(best, Estimator) and best.model_data == "cancer:1"
    assert best.hyperparameters == tuner.best_hyperparameters_
    # The SDK's describe result, as best_estimator takes it: another trial, without a model.
    other = next(t for t in tuner.trials_ if t["name"] != tuner.best_training_job_)
    chosen = tuner.best_estimator({"TrainingJobName": other["name"]})
    assert chosen.hyperparameters == other["hyperparameters"] and chosen.model_version_ is None
    with pytest.raises(InvalidInput, match="best_training_job must be a training job's name"):
        tuner.best_estimator({"JobName": other["name"]})

    # As the SDK's tuner.deploy(initial_instance_count, instance_type, ...): the best model.
    with pytest.warns(UserWarning, match="instance_type 'ml.m5.xlarge' is not used"):
        predictor = tuner.deploy(1, "ml.m5.xlarge", endpoint_name="cancer-api", wait=False)
    assert isinstance(predictor, Predictor) and predictor.endpoint_name == "cancer-api"
    variants = platform.endpoints.get("cancer-api").config.variants
    assert [(v.model, v.version) for v in variants] == [("cancer", 1)]
    # Without a name, as the SDK's: an endpoint named after the best trial, never the model's
    # (an endpoint called "cancer", serving something else, is left as it is).
    platform.endpoints.create("cancer", {"other": "cancer:1"})
    default = tuner.deploy(wait=False)
    assert default.endpoint_name == tuner.best_training_job_
    assert [v.name for v in platform.endpoints.get("cancer").config.variants] == ["other"]
    assert platform.endpoints.get(tuner.best_training_job_).config.variants[0].model == "cancer"


def test_a_tuning_job_name_or_an_attach_that_cannot_be_refuses_naming_it(
    platform: Platform, cancer_csv: tuple[Path, Path]
) -> None:
    from modelyard.errors import AlreadyExists, JobNotFound

    train, val = cancer_csv
    tuner = HyperparameterTuner(_estimator(platform), "validation:logloss",
                                {"max_depth": IntegerParameter(2, 3)}, max_jobs=1)  # fmt: skip
    with pytest.raises(InvalidInput, match="invalid job name 'no spaces'"):
        tuner.fit(str(train), validation=str(val), job_name="no spaces")
    assert platform.jobs.list_jobs() == []
    with pytest.raises(JobNotFound, match="job 'nope' does not exist"):
        HyperparameterTuner.attach("nope", platform)
    with pytest.raises(ValueError, match="no tuning job yet"):
        tuner.wait()
    _estimator(platform).fit(str(train), job_name="plain", logs=False)
    with pytest.raises(InvalidInput, match="job 'plain' is a training job, not a tuning job"):
        HyperparameterTuner.attach("plain", platform)
    with pytest.raises(AlreadyExists, match="job 'plain' already exists"):
        tuner.fit(str(train), validation=str(val), job_name="plain")
    assert [j.name for j in platform.jobs.list_jobs()] == ["plain"]
    with (
        pytest.warns(UserWarning, match="job_details is not used"),
        pytest.raises(JobNotFound),
    ):
        HyperparameterTuner.attach("nope", platform, job_details={})


@pytest.mark.parametrize(
    ("strategy", "max_trials"),
    [("Bayesian", 1), ("Random", 1), ("Grid", 2)],  # a grid's default: every point
)
def test_the_sdks_defaults_one_job_and_maximize_a_metric_its_name_does_not_explain(
    platform: Platform,
    cancer_csv: tuple[Path, Path],
    tmp_path: Path,
    strategy: str,
    max_trials: int,
) -> None:
    # SageMaker SDK code that leaves max_jobs and objective_type out gets one training job
    # (a grid: all its points) and Maximize, there and here: not 20 jobs, nor a refusal.
    tuner = HyperparameterTuner(
        _script_estimator(platform, tmp_path, SCORE_SCRIPT, "scored"),
        "validation:score",
        {"depth": CategoricalParameter([3, 7])},
        [{"Name": "validation:score", "Regex": "score=([0-9.]+)"}],
        strategy=strategy,
    )
    assert (tuner.max_jobs, tuner.objective_type) == (None, None)
    tuner.fit(str(cancer_csv[0]))
    config = platform.tuning.get(tuner.job_.name).spec["tuning"]
    assert (config["max_trials"], config["maximize"]) == (max_trials, True)
    assert len(tuner.trials_) == max_trials
    assert tuner.best_value_ == max(t["value"] for t in tuner.trials_)


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        (None, r"objective must be a metric's name.*NoneType None"),
        (5, r"objective must be a metric's name.*int 5"),
        ("", r"1 to 255 characters, got ''"),
        ("  ", r"1 to 255 characters"),
        ("m" * 256, r"1 to 255 characters"),
        ("validation:auc\nx", r"control character"),
    ],
)
def test_an_objective_that_is_no_metric_name_is_refused_before_anything_is_submitted(
    platform: Platform, cancer_csv: tuple[Path, Path], objective: Any, message: str
) -> None:
    tuner = HyperparameterTuner(
        _estimator(platform), objective, {"max_depth": IntegerParameter(2, 3)}
    )
    with pytest.raises(InvalidInput, match=message):
        tuner.fit(train=str(cancer_csv[0]), wait=False)
    assert platform.jobs.list_jobs() == []
