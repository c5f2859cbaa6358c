"""The Estimator: training jobs from Python, scikit-learn style."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard import Estimator
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import AlreadyExists, InvalidInput, JobFailed


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home"))
    yield p
    p.close()


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    from sklearn.datasets import load_iris

    path = tmp_path / "iris.csv"
    load_iris(as_frame=True).frame.to_csv(path, index=False)
    return path


def test_fit_registers_and_loads(platform: Platform, iris_csv: Path) -> None:
    est = Estimator(
        "random-forest",
        model_name="iris",
        target="target",
        hyperparameters={"n_estimators": 20},
        platform=platform,
    )
    assert est.fit(train=str(iris_csv)) is est
    assert est.model_version_ is not None and est.model_version_.ref == "iris:1"
    assert est.metrics_["train:accuracy"] > 0.9
    rows = pd.read_csv(iris_csv).drop(columns=["target"]).head(10)
    model = est.load()
    assert np.asarray(model.predict(rows)).shape == (10,)
    model.unload()


def test_params_and_failure(platform: Platform, iris_csv: Path) -> None:
    est = Estimator("xgboost", model_name="iris", platform=platform)
    assert est.get_params()["algorithm"] == "xgboost"
    est.set_params(target="no_such_column")
    with pytest.raises(JobFailed, match="no_such_column"):
        est.fit(train=str(iris_csv))
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(learning_rate=0.1)


HPS_SCRIPT = """
import json
import os
import sys
from pathlib import Path

print("SEEN " + json.dumps({
    "argv": sys.argv[1:],
    "hps": json.loads(os.environ["SM_HPS"]),
    "flag": os.environ["SM_HP_FLAG"],
}), flush=True)
Path(os.environ["SM_MODEL_DIR"], "model.py").write_text(
    "class Model:\\n"
    "    def load(self, artifacts_dir):\\n"
    "        pass\\n"
    "    def predict(self, data):\\n"
    "        return data\\n"
)
"""


def test_a_script_reads_back_the_typed_hyperparameters_it_was_given(
    platform: Platform, iris_csv: Path, tmp_path: Path
) -> None:
    # The SageMaker SDK's script-mode estimators send each value JSON-encoded and the toolkit
    # decodes it: a script reading SM_HPS gets False, not the (truthy) string "False".
    script = tmp_path / "src" / "train.py"
    script.parent.mkdir()
    script.write_text(HPS_SCRIPT)
    # Strings too, as strings: "123" is not the number, "true" not the boolean.
    given = {"flag": False, "layers": ["a", "b"], "opts": {"k": 1}, "lr": 0.1, "name": "abc",
             "run_id": "123", "mode": "true"}  # fmt: skip
    est = Estimator(
        script=str(script),
        model_name="hps",
        hyperparameters=given,
        flavor="pyfunc",
        trust_code=True,
        platform=platform,
    )
    est.fit(train=str(iris_csv))
    assert est.model_version_ is not None
    line = next(x for x in platform.jobs.logs(est.job_.name).splitlines() if x.startswith("SEEN "))
    seen = json.loads(line.removeprefix("SEEN "))
    assert seen["hps"] == given
    assert seen["flag"] == "false"
    assert seen["argv"] == [
        "--flag", "False", "--layers", "['a', 'b']", "--lr", "0.1", "--mode", "true",
        "--name", "abc", "--opts", "k=1", "--run_id", "123",
    ]  # fmt: skip


def test_the_sdks_script_mode_arguments_run_unchanged(
    platform: Platform, iris_csv: Path, tmp_path: Path
) -> None:
    # sagemaker.estimator.Estimator(entry_point=, source_dir=, role=, instance_count=,
    # instance_type=, hyperparameters=): the script is entry_point in source_dir.
    source = tmp_path / "code"
    source.mkdir()
    (source / "train.py").write_text(HPS_SCRIPT)
    est = Estimator(
        entry_point="train.py",
        source_dir=str(source),
        role="arn:aws:iam::111122223333:role/SageMakerRole",
        instance_count=1,
        instance_type="local",
        hyperparameters={"flag": True},
        model_name="sdk",
        flavor="pyfunc",
        trust_code=True,
        platform=platform,
    )
    assert est.script == str(source / "train.py")
    assert (est.role, est.instance_count, est.instance_type) == (
        "arn:aws:iam::111122223333:role/SageMakerRole",
        1,
        "local",
    )  # read back as the SDK's estimator has them
    # Paths as the SDK takes them too (pathlib), and a source_dir that is no folder refused.
    assert Estimator(entry_point=Path("train.py"), source_dir=source).script == est.script
    with pytest.raises(InvalidInput, match="is not a folder"):
        Estimator(entry_point="train.py", source_dir=str(source / "train.py"))
    est.fit({"train": str(iris_csv)}, logs=False)
    assert est.model_data == "sdk:1"
    assert "SEEN " in platform.jobs.logs(est.job_.name)
    # A cloud machine, or more than one, is not what the job runs on: said, not refused.
    with pytest.warns(UserWarning, match="instance_type 'ml.m5.xlarge' is not used"):
        Estimator(entry_point=str(source / "train.py"), instance_type="ml.m5.xlarge")
    with pytest.warns(UserWarning, match="instance_count=2 is not used: the script runs once"):
        Estimator(entry_point=str(source / "train.py"), instance_count=2)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"entry_point": "train.py", "script": "train.py"}, "give entry_point or script"),
        ({"entry_point": "sub/train.py", "source_dir": "code"},
         "entry_point 'sub/train.py' must be a file name in source_dir"),
        ({"entry_point": "train.py", "source_dir": "s3://bucket/code.tar.gz"},
         "source_dir must be a local folder"),
        ({"source_dir": "code"}, "source_dir goes with an entry_point"),
        ({"entry_point": "train.py", "instance_count": 0},
         "instance_count must be a whole number of 1 or more"),
        ({"entry_point": "train.py", "instance_type": ""}, "instance_type must be a name"),
    ],
)  # fmt: skip
def test_sdk_arguments_that_cannot_be_honoured_are_refused_naming_them(
    given: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Estimator(**given)  # type: ignore[arg-type]


def test_fit_takes_the_sagemaker_sdks_inputs_a_dict_of_channels(
    platform: Platform, iris_csv: Path
) -> None:
    est = Estimator(
        "random-forest",
        model_name="iris",
        target="target",
        hyperparameters={"n_estimators": 5},
        platform=platform,
    )
    est.fit({"train": str(iris_csv), "validation": iris_csv})
    assert est.job_.spec["validation"] == str(iris_csv)
    assert "validation:accuracy" in est.metrics_
    assert est.fit(inputs=str(iris_csv)).model_version_.ref == "iris:2"
    assert est.job_.spec["validation"] is None


def test_inputs_the_job_cannot_take_are_refused_before_anything_is_submitted(
    platform: Platform, iris_csv: Path
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target", platform=platform)
    refused = {
        "channel 'test'": ({"train": str(iris_csv), "test": str(iris_csv)}, {}),
        "no 'train' channel": ({"validation": str(iris_csv)}, {}),
        "validation twice": ({"train": str(iris_csv), "validation": str(iris_csv)},
                             {"validation": str(iris_csv)}),
        "a path or URL": ({"train": 3}, {}),
        "inputs or train": (str(iris_csv), {"inputs": str(iris_csv)}),
    }  # fmt: skip
    for message, (first, kwargs) in refused.items():
        with pytest.raises(InvalidInput, match=message):
            est.fit(first, **kwargs)
    with pytest.raises(InvalidInput, match="training data"):
        est.fit()
    assert platform.jobs.list_jobs() == []


METRIC_SCRIPT = """
import os
from pathlib import Path

print("epoch 1: auc=0.91 loss=0.25", flush=True)
Path(os.environ["SM_MODEL_DIR"], "model.py").write_text(
    "class Model:\\n"
    "    def load(self, artifacts_dir):\\n"
    "        pass\\n"
    "    def predict(self, data):\\n"
    "        return data\\n"
)
"""


def test_metric_definitions_take_the_sagemaker_sdks_dicts(
    platform: Platform, iris_csv: Path, tmp_path: Path
) -> None:
    script = tmp_path / "src" / "train.py"
    script.parent.mkdir()
    script.write_text(METRIC_SCRIPT)
    definitions = [{"Name": "validation:auc", "Regex": "auc=([0-9.]+)"}, "loss=loss=([0-9.]+)"]
    est = Estimator(script=str(script), model_name="m", flavor="pyfunc", trust_code=True,
                    metric_definitions=definitions, platform=platform)  # fmt: skip
    assert est.fit(str(iris_csv)).metrics_ == {"validation:auc": 0.91, "loss": 0.25}
    assert est.get_params()["metric_definitions"] is definitions


def test_metric_definitions_of_another_shape_are_refused_naming_it(
    platform: Platform, iris_csv: Path, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(METRIC_SCRIPT)
    refused = {
        "a list of definitions": "auc=auc=([0-9.]+)",
        "'Name' and 'Regex'": [{"Name": "auc", "regex": "auc=([0-9.]+)"}],
        "'=' in the name": [{"Name": "a=b", "Regex": "auc=([0-9.]+)"}],
        "got int": [3],
    }
    for message, definitions in refused.items():
        est = Estimator(script=str(script), model_name="m", metric_definitions=definitions,
                        platform=platform)  # fmt: skip
        with pytest.raises(InvalidInput, match=message):
            est.fit(str(iris_csv))
    assert platform.jobs.list_jobs() == []


def test_a_none_hyperparameter_of_a_built_in_keeps_its_default(
    platform: Platform, iris_csv: Path
) -> None:
    # The SageMaker SDK's built-in algorithm estimators send no None-valued hyperparameter:
    # None means "not set", so the algorithm's default applies (not a job failing later).
    est = Estimator("xgboost", model_name="iris", target="target", platform=platform,
                    hyperparameters={"eta": None, "num_round": 3})  # fmt: skip
    est.fit(train=str(iris_csv))
    assert est.model_version_ is not None
    assert dict(est.job_.hyperparameters) == {"num_round": "3"}
    assert "eta" not in est.model_version_.params


def test_fit_takes_the_sagemaker_sdks_job_name_and_logs(
    platform: Platform, iris_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target",
                    hyperparameters={"n_estimators": 5}, platform=platform)  # fmt: skip
    est.fit(str(iris_csv), job_name="iris-run-1", logs=False)
    assert est.job_.name == "iris-run-1" and platform.jobs.get("iris-run-1").status.finished
    assert capsys.readouterr().out == ""
    # The SDK's default, logs="All": the job's log is shown while fit waits.
    est.fit(str(iris_csv), job_name="iris-run-2")
    assert platform.jobs.logs("iris-run-2") in capsys.readouterr().out
    est.fit(str(iris_csv), logs="None")
    assert capsys.readouterr().out == ""


def test_a_job_name_or_logs_fit_cannot_take_are_refused_before_anything_is_submitted(
    platform: Platform, iris_csv: Path
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target", platform=platform)
    with pytest.raises(InvalidInput, match="invalid job name 'no spaces'"):
        est.fit(str(iris_csv), job_name="no spaces")
    with pytest.raises(InvalidInput, match=r"logs must be .*'All'.*got 'Some'"):
        est.fit(str(iris_csv), logs="Some")
    assert platform.jobs.list_jobs() == []
    est.set_params(hyperparameters={"n_estimators": 5}).fit(
        str(iris_csv), job_name="run", logs=False
    )
    with pytest.raises(AlreadyExists, match="job 'run' already exists"):
        est.fit(str(iris_csv), job_name="run", logs=False)
    assert [j.name for j in platform.jobs.list_jobs()] == ["run"]


ENV_SCRIPT = """
import json
import os
from pathlib import Path

env = json.loads(os.environ["SM_TRAINING_ENV"])
print("SEEN " + json.dumps({"env": env, "job": os.environ.get("TRAINING_JOB_NAME"),
                            "sm": sorted(k for k in os.environ if k.startswith("SM_"))}))
Path(os.environ["SM_MODEL_DIR"], "model.py").write_text(
    "class Model:\\n"
    "    def load(self, artifacts_dir):\\n"
    "        pass\\n"
    "    def predict(self, data):\\n"
    "        return data\\n"
)
"""

# What the SageMaker training toolkit's Environment holds (its properties), for one host.
TOOLKIT_TRAINING_ENV = {
    "additional_framework_parameters", "channel_input_dirs", "current_host",
    "current_instance_group", "current_instance_group_hosts", "current_instance_type",
    "distribution_hosts", "distribution_instance_groups", "framework_module", "hosts",
    "hyperparameters", "input_config_dir", "input_data_config", "input_dir", "instance_groups",
    "instance_groups_dict", "is_hetero", "is_master", "is_modelparallel_enabled",
    "is_smddpmprun_installed", "is_smddprun_installed", "job_name", "log_level",
    "master_hostname", "model_dir", "module_dir", "module_name", "network_interface_name",
    "num_cpus", "num_gpus", "num_neurons", "output_data_dir", "output_dir",
    "output_intermediate_dir", "resource_config", "topology", "user_entry_point",
}  # fmt: skip


def test_a_script_sees_its_job_name_and_the_toolkits_training_env(
    platform: Platform, iris_csv: Path, tmp_path: Path
) -> None:
    script = tmp_path / "src" / "train.py"
    script.parent.mkdir()
    script.write_text(ENV_SCRIPT)
    est = Estimator(script=str(script), model_name="env", flavor="pyfunc", trust_code=True,
                    platform=platform)  # fmt: skip
    est.fit(str(iris_csv), job_name="env-run-7", logs=False)
    line = next(x for x in platform.jobs.logs("env-run-7").splitlines() if x.startswith("SEEN "))
    seen = json.loads(line.removeprefix("SEEN "))
    env = seen["env"]
    assert env["job_name"] == seen["job"] == "env-run-7"
    assert set(env) == TOOLKIT_TRAINING_ENV
    assert env["current_instance_group_hosts"] == env["hosts"] == ["algo-1"]
    assert env["instance_groups"] == ["homogeneousCluster"]
    assert env["instance_groups_dict"]["homogeneousCluster"]["hosts"] == ["algo-1"]
    assert (env["is_hetero"], env["num_neurons"], env["topology"]) == (False, 0, [])
    for name in ("CURRENT_INSTANCE_GROUP_HOSTS", "INSTANCE_GROUPS", "INSTANCE_GROUPS_DICT",
                 "DISTRIBUTION_INSTANCE_GROUPS", "IS_HETERO", "NUM_NEURONS"):  # fmt: skip
        assert f"SM_{name}" in seen["sm"]


def test_attach_makes_an_estimator_of_a_finished_job(
    platform: Platform, iris_csv: Path, tmp_path: Path
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target", aliases=("prod",),
                    hyperparameters={"n_estimators": 5}, platform=platform)  # fmt: skip
    est.fit(str(iris_csv), job_name="iris-run", logs=False)
    attached = Estimator.attach("iris-run", sagemaker_session=platform)
    params = attached.get_params()
    assert (params["algorithm"], params["script"], params["model_name"]) == (
        "random-forest", None, "iris"
    )  # fmt: skip
    assert (params["target"], params["aliases"]) == ("target", ("prod",))
    assert params["hyperparameters"] == {"n_estimators": "5"}
    assert attached.job_.name == "iris-run" and attached.metrics_ == est.metrics_
    assert attached.model_version_ == est.model_version_
    assert attached.model_data == "iris:1"
    model = attached.load()
    model.unload()
    # Fitting it again trains the same request: a new version of the same model.
    attached.fit(str(iris_csv), logs=False)
    assert attached.model_data == "iris:2"

    # A script's hyperparameters come back as the values it was given, not their JSON.
    script = tmp_path / "src" / "train.py"
    script.parent.mkdir()
    script.write_text(METRIC_SCRIPT)
    given = {"flag": False, "run_id": "123", "layers": [1, 2]}
    Estimator(script=str(script), model_name="m", flavor="pyfunc", trust_code=True,
              hyperparameters=given, platform=platform).fit(
        str(iris_csv), job_name="script-run", logs=False
    )  # fmt: skip
    attached = Estimator.attach("script-run", platform)
    assert attached.get_params()["hyperparameters"] == given
    assert attached.script == str(script) and attached.trust_code
    assert attached.model_data == "m:1"


def test_attach_refuses_an_unknown_job_and_a_job_of_another_kind(
    platform: Platform, iris_csv: Path
) -> None:
    from modelyard.errors import JobNotFound

    with pytest.raises(JobNotFound, match="job 'nope' does not exist"):
        Estimator.attach("nope", sagemaker_session=platform)
    tuning = platform.tuning.submit(
        "iris", train=str(iris_csv), objective="train:accuracy", algorithm="random-forest",
        target="target", ranges=["n_estimators=int:2:4"], max_trials=1,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=f"job '{tuning.name}' is a tuning job, not a training"):
        Estimator.attach(tuning.name, sagemaker_session=platform)
    with pytest.raises(InvalidInput, match="sagemaker_session must be a modelyard Platform"):
        Estimator.attach("nope", sagemaker_session=object())  # type: ignore[arg-type]
    platform.tuning.wait(tuning.name)


def test_attach_to_the_best_tuning_trial_has_the_model_the_tuning_job_registered(
    platform: Platform, iris_csv: Path
) -> None:
    tuning = platform.tuning.submit(
        "iris", train=str(iris_csv), objective="train:accuracy", algorithm="random-forest",
        target="target", ranges=["n_estimators=int:2:6"], max_trials=2, job_name="tune",
    )  # fmt: skip
    done = platform.tuning.wait(tuning.name)
    best = (done.artifact or {})["best_trial"]
    attached = Estimator.attach(best, platform)
    assert attached.model_data == "iris:1"
    assert attached.model_version_ is not None and attached.model_version_.source.uri.endswith(
        f"/{best}"
    )
    other = next(name for name in ("tune-000", "tune-001") if name != best)
    loser = Estimator.attach(other, platform)
    assert loser.model_version_ is None
    with pytest.raises(ValueError, match=f"only the best trial of tuning job 'tune' .*{best}"):
        loser.model_data  # noqa: B018


def test_attach_to_a_running_job_waits_for_it_and_a_failed_one_raises(
    platform: Platform, iris_csv: Path
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target",
                    hyperparameters={"n_estimators": 5}, platform=platform)  # fmt: skip
    est.fit(str(iris_csv), job_name="running", wait=False)
    attached = Estimator.attach("running", platform)
    assert attached.job_.status.value == "Completed"
    assert attached.model_data == "iris:1"
    est.set_params(target="no_such_column").fit(str(iris_csv), job_name="broken", wait=False)
    with pytest.raises(JobFailed, match="no_such_column"):
        Estimator.attach("broken", platform)


def test_latest_training_job_waits_describes_and_the_estimator_learns(
    platform: Platform, iris_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target",
                    hyperparameters={"n_estimators": 5}, platform=platform)  # fmt: skip
    assert est.latest_training_job is None
    with pytest.raises(ValueError, match="not associated with a training job"):
        est.logs()
    est.fit(str(iris_csv), validation=str(iris_csv), job_name="later", wait=False)
    job = est.latest_training_job
    assert job is not None and job.name == job.job_name == "later"
    running = job.describe()
    assert running["TrainingJobName"] == "later"
    assert running["TrainingJobStatus"] == "InProgress"  # SageMaker has no Pending
    assert running["SecondaryStatus"] in ("Starting", "Training", "Completed")
    assert est.model_version_ is None
    job.wait(logs="None")
    assert capsys.readouterr().out == ""
    assert est.model_data == "iris:1" and est.job_.status.value == "Completed"
    done = job.describe()
    assert done["TrainingJobStatus"] == "Completed" and "FailureReason" not in done
    assert done["HyperParameters"] == {"n_estimators": "5"}
    assert done["AlgorithmSpecification"]["AlgorithmName"] == "random-forest"
    assert [c["ChannelName"] for c in done["InputDataConfig"]] == ["train", "validation"]
    assert done["CreationTime"] <= done["TrainingStartTime"] <= done["TrainingEndTime"]
    assert done["LastModifiedTime"] == done["TrainingEndTime"]
    metrics = {m["MetricName"]: m["Value"] for m in done["FinalMetricDataList"]}
    assert metrics == est.metrics_
    with pytest.raises(InvalidInput, match="logs must be"):
        job.wait(logs="Some")


def test_logs_streams_the_job_until_it_ends_and_a_failure_is_described(
    platform: Platform, iris_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = Estimator("random-forest", model_name="iris", target="target",
                    hyperparameters={"n_estimators": 5}, platform=platform)  # fmt: skip
    est.fit(str(iris_csv), job_name="watched", wait=False)
    est.logs()
    assert platform.jobs.logs("watched") in capsys.readouterr().out
    assert est.model_data == "iris:1"

    est.set_params(target="no_such_column").fit(str(iris_csv), job_name="broken", wait=False)
    with pytest.raises(JobFailed, match="no_such_column"):
        est.latest_training_job.wait(logs=False)  # type: ignore[union-attr]
    described = est.latest_training_job.describe()  # type: ignore[union-attr]
    assert described["TrainingJobStatus"] == "Failed"
    assert "no_such_column" in described["FailureReason"]
    assert est.job_.name == "broken"

    # The handle of an earlier fit(wait=False) ending does not overwrite what the estimator
    # learns from its latest job.
    est.set_params(target="target").fit(str(iris_csv), job_name="first", wait=False)
    first = est.latest_training_job
    est.fit(str(iris_csv), job_name="second", wait=False)
    assert first is not None and first is not est.latest_training_job
    first.wait(logs=False)
    assert est.job_.name == "second" and est.model_version_ is None
    est.logs()
    second = platform.jobs.get("second").model_version
    assert est.job_.name == "second" and est.model_data == f"iris:{second}"
    assert second != platform.jobs.get("first").model_version
