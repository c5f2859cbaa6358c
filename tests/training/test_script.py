"""SageMaker script mode: real scripts, run unchanged in SageMaker's environment."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification

from modelyard.errors import InvalidInput, ModelyardError
from modelyard.training.flavor_detect import detect_flavor
from modelyard.training.metric_definitions import (
    EvalLogScanner,
    MetricDefinition,
    MetricScanner,
    key_value_definition,
    parse_metric_definition,
)
from modelyard.training.script import (
    JobStopped,
    ScriptFailed,
    ScriptResult,
    copy_code,
    run_script,
)
from tests.waiting import wait_for

# Written the way SageMaker's documentation shows XGBoost script mode, without a change.
XGBOOST_SCRIPT = """\
import argparse
import os

import pandas as pd
import xgboost as xgb

if __name__ == "__main__":
    parser = argparse.ArgumentParser()

    # Hyperparameters are described here.
    parser.add_argument("--max_depth", type=int, default=5)
    parser.add_argument("--eta", type=float, default=0.2)
    parser.add_argument("--objective", type=str, default="binary:logistic")
    parser.add_argument("--num_round", type=int, default=10)

    # SageMaker specific arguments. Defaults are set in the environment variables.
    parser.add_argument("--output-data-dir", type=str, default=os.environ["SM_OUTPUT_DATA_DIR"])
    parser.add_argument("--model-dir", type=str, default=os.environ["SM_MODEL_DIR"])
    parser.add_argument("--train", type=str, default=os.environ["SM_CHANNEL_TRAIN"])
    parser.add_argument("--validation", type=str, default=os.environ["SM_CHANNEL_VALIDATION"])
    args = parser.parse_args()

    train = pd.concat(
        pd.read_csv(os.path.join(args.train, f), header=None) for f in os.listdir(args.train)
    )
    validation = pd.concat(
        pd.read_csv(os.path.join(args.validation, f), header=None)
        for f in os.listdir(args.validation)
    )
    dtrain = xgb.DMatrix(train.iloc[:, 1:], label=train.iloc[:, 0])
    dval = xgb.DMatrix(validation.iloc[:, 1:], label=validation.iloc[:, 0])

    params = {
        "max_depth": args.max_depth,
        "eta": args.eta,
        "objective": args.objective,
        "eval_metric": ["logloss", "auc"],
        "nthread": 1,
    }
    watchlist = [(dtrain, "train"), (dval, "validation")]
    booster = xgb.train(
        params=params, dtrain=dtrain, evals=watchlist, num_boost_round=args.num_round
    )

    model_location = os.path.join(args.model_dir, "xgboost-model")
    booster.save_model(model_location)
    print("Stored trained model at {}".format(model_location))
"""


def write(folder: Path, name: str, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def run(script: Path, tmp_path: Path, **kwargs: object) -> ScriptResult:
    options: dict[str, object] = {
        "channels": {},
        "hyperparameters": {},
        "work_dir": tmp_path / "work",
        "log_file": tmp_path / "train.log",
        "metric_definitions": [],
    }
    options.update(kwargs)
    return run_script(script, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Headerless CSV, label first, as SageMaker's built-in and script-mode XGBoost read."""
    root = tmp_path_factory.mktemp("data")
    x, y = make_classification(n_samples=600, n_features=6, n_informative=4, random_state=0)
    table = np.column_stack([y, x])
    out = {}
    for name, rows in (("train", table[:450]), ("validation", table[450:])):
        (root / name).mkdir()
        np.savetxt(root / name / f"{name}.csv", rows, delimiter=",", fmt="%.6g")
        out[name] = root / name
    return out


def test_sagemaker_xgboost_script_runs_unchanged(channels, tmp_path) -> None:
    script = write(tmp_path / "src", "train.py", XGBOOST_SCRIPT)
    seen: list[str] = []
    result = run(
        script,
        tmp_path,
        channels=channels,
        hyperparameters={"max_depth": "3", "eta": "0.3", "num_round": "8"},
        metric_definitions=[parse_metric_definition("validation:auc=validation-auc:([0-9.]+)")],
        on_line=seen.append,
    )
    assert result.exit_code == 0
    assert (result.model_dir / "xgboost-model").is_file()
    assert result.model_dir == tmp_path / "work" / "model"
    assert 0.8 < result.metrics["validation:auc"] <= 1.0
    assert set(result.metrics) >= {"train:logloss", "train:auc", "validation:logloss"}
    assert len(result.metric_history["validation:auc"]) == 8  # one per round
    assert result.metric_history["validation:auc"][-1] == result.metrics["validation:auc"]
    assert any(line.startswith("[7]\ttrain-logloss:") for line in seen)
    log = (tmp_path / "train.log").read_text()
    assert "Stored trained model at" in log and "[0]\ttrain-logloss:" in log
    assert detect_flavor(result.model_dir) == ("xgboost", result.model_dir / "xgboost-model")


ENV_SCRIPT = """\
import json, os, sys
import helper  # a module next to the script

env = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
config = os.environ["SM_INPUT_CONFIG_DIR"]
dump = {
    "env": env,
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "helper": helper.VALUE,
    "extra": os.environ.get("MY_SETTING"),
    "modelyard": sorted(k for k in os.environ if k.startswith("MODELYARD_")),
    "path": os.environ.get("PATH"),
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "channel_files": {
        name: sorted(os.listdir(os.environ["SM_CHANNEL_" + name.upper()]))
        for name in json.loads(os.environ["SM_CHANNELS"])
    },
    "config": {
        name: json.load(open(os.path.join(config, name + ".json")))
        for name in ("hyperparameters", "inputdataconfig", "resourceconfig")
    },
}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "env.json"), "w") as fh:
    json.dump(dump, fh)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("x")
"""


def test_environment_is_sagemakers(channels, tmp_path, monkeypatch) -> None:
    project = tmp_path / "project"
    script = write(project, "train.py", ENV_SCRIPT)
    write(project, "helper.py", "VALUE = 42\n")
    write(project / "__pycache__", "junk.pyc", "")
    single = tmp_path / "test.csv"
    single.write_text("1,2,3\n")
    monkeypatch.setenv("SM_STALE", "from an earlier run")
    monkeypatch.setenv("MODELYARD_DB_URL", "postgresql+psycopg://u:secret@db:5432/meta")
    work = project / "job-1"  # inside the script's folder: must not be copied into itself
    result = run(
        script,
        tmp_path,
        work_dir=work,
        channels={"train": channels["train"], "test": single},
        hyperparameters={
            "max_depth": "6",
            "eta": "0.2",
            "objective": "binary:logistic",
            "early_stopping": "true",
            "label": '"quoted"',
            "x": "1",
            "sagemaker_program": "train.py",
        },
        env={"MY_SETTING": "on"},
    )
    dump = json.loads((result.output_dir / "data" / "env.json").read_text())
    env = dump["env"]
    args = [
        "--early_stopping", "True", "--eta", "0.2", "--label", "quoted", "--max_depth", "6",
        "--objective", "binary:logistic", "-x", "1",
    ]  # fmt: skip
    assert dump["argv"] == ["train.py", *args]
    assert json.loads(env["SM_USER_ARGS"]) == args
    hps = {
        "max_depth": 6,
        "eta": 0.2,
        "objective": "binary:logistic",
        "early_stopping": True,
        "label": "quoted",
        "x": 1,
    }
    assert json.loads(env["SM_HPS"]) == hps
    assert env["SM_HP_MAX_DEPTH"] == "6" and env["SM_HP_OBJECTIVE"] == "binary:logistic"
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_program": "train.py"}
    assert env["SM_MODEL_DIR"] == str(work / "model")
    assert env["SM_OUTPUT_DIR"] == str(work / "output")
    assert env["SM_OUTPUT_DATA_DIR"] == str(work / "output" / "data")
    assert env["SM_INPUT_DIR"] == str(work / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(work / "input" / "config")
    assert env["SM_CHANNELS"] == '["test","train"]'
    assert env["SM_CHANNEL_TRAIN"] == str(work / "input" / "data" / "train")
    assert dump["channel_files"] == {"train": ["train.csv"], "test": ["test.csv"]}
    assert env["SM_NUM_CPUS"] == str(os.cpu_count())
    assert env["SM_NUM_GPUS"] == "0"
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_USER_ENTRY_POINT"] == "train.py" and env["SM_MODULE_NAME"] == "train"
    assert "SM_STALE" not in env
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == hps
    assert training_env["channel_input_dirs"] == {
        "test": str(work / "input" / "data" / "test"),
        "train": str(work / "input" / "data" / "train"),
    }
    assert training_env["model_dir"] == env["SM_MODEL_DIR"]
    assert training_env["output_data_dir"] == env["SM_OUTPUT_DATA_DIR"]
    assert training_env["hosts"] == ["algo-1"] and training_env["current_host"] == "algo-1"
    assert training_env["num_cpus"] == os.cpu_count() and training_env["num_gpus"] == 0
    config = dump["config"]
    assert config["hyperparameters"]["max_depth"] == "6"  # the request's strings, undecoded
    assert config["hyperparameters"]["label"] == '"quoted"'
    assert sorted(config["inputdataconfig"]) == ["test", "train"]
    assert config["resourceconfig"]["current_host"] == "algo-1"
    assert dump["cwd"] == str(work / "code") and dump["helper"] == 42
    assert dump["extra"] == "on" and dump["unbuffered"] == "1"
    # The platform's settings (its database password among them) are not the script's.
    assert dump["modelyard"] == [] and dump["path"] == os.environ["PATH"]
    assert sorted(p.name for p in (work / "code").iterdir()) == ["helper.py", "train.py"]
    assert result.metrics == {}


def test_custom_metric_definitions_read_printed_values(tmp_path) -> None:
    script = write(
        tmp_path / "src",
        "train.py",
        """\
        import os
        for epoch, x in enumerate([0.9, 0.5, 0.25]):
            print(f"epoch {epoch}: 3")
            print(f"rmse={x}")
            print(f"val_rmse={x * 2}")
            print(f"Validation loss: {x / 10}")
        open(os.path.join(os.environ["SM_MODEL_DIR"], "model.bin"), "wb").write(b"m")
        """,
    )
    result = run(
        script,
        tmp_path,
        metric_definitions=[
            parse_metric_definition("rmse"),
            parse_metric_definition(r"validation:loss=Validation loss: ([0-9.eE-]+)"),
        ],
    )
    assert result.metrics == {"rmse": 0.25, "validation:loss": 0.025}
    assert result.metric_history["rmse"] == [0.9, 0.5, 0.25]
    assert result.metric_history["validation:loss"] == [0.09, 0.05, 0.025]


def test_crashing_script_fails_with_its_traceback(tmp_path) -> None:
    script = write(
        tmp_path / "src",
        "train.py",
        """\
        print("loading data")
        def train():
            raise ValueError("boom: bad column")
        train()
        """,
    )
    with pytest.raises(ScriptFailed) as info:
        run(script, tmp_path)
    err = info.value
    assert isinstance(err, ModelyardError)
    assert (err.code, err.http_status, err.exit_code) == ("script_failed", 422, 8)
    assert str(err).splitlines()[0] == "training script exited with code 1"
    assert "Traceback (most recent call last)" in err.log_tail
    assert "ValueError: boom: bad column" in err.log_tail
    assert "ValueError: boom: bad column" in str(err)
    assert "ValueError: boom" in (tmp_path / "train.log").read_text()


def test_script_that_writes_no_model_fails(tmp_path) -> None:
    script = write(tmp_path / "src", "train.py", "print('trained, but forgot to save')\n")
    with pytest.raises(ScriptFailed, match="wrote no model to SM_MODEL_DIR") as info:
        run(script, tmp_path)
    assert "forgot to save" in info.value.log_tail


# Sleeps for a minute, with a child that sleeps ten: a run that is stopped or timed out must
# end the script long before it can say it woke up, and the child long before the test's
# deadline for its death (so it cannot pass by dying of old age).
SLEEPER = """\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[-1], "w").write(str(child.pid))
print("started", flush=True)
time.sleep(60)
print("woke up", flush=True)
"""


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (R, S, Z …), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _wait_dead(pid: int) -> None:
    # A zombie is dead, only not yet reaped (by init, as its parent was killed first).
    try:
        wait_for(f"process {pid} to die", lambda: _state(pid), lambda s: s in (None, "Z", "X"))
    except AssertionError:
        os.kill(pid, signal.SIGKILL)  # a failed test leaves no ten-minute orphan behind
        raise


def test_stop_kills_the_script_and_its_children(tmp_path) -> None:
    pid_file = tmp_path / "child.pid"
    script = write(tmp_path / "src", "train.py", SLEEPER)
    stop = threading.Event()

    def on_line(line: str) -> None:
        if line == "started":  # the child is running, and its pid written
            stop.set()

    with pytest.raises(JobStopped):
        run(
            script,
            tmp_path,
            stop=stop,
            on_line=on_line,
            hyperparameters={"pid_file": str(pid_file)},
        )
    log = (tmp_path / "train.log").read_text()
    assert "started" in log
    assert "woke up" not in log, "the stop waited for the script to end by itself"
    _wait_dead(int(pid_file.read_text()))


def test_timeout_kills_the_script(tmp_path) -> None:
    script = write(tmp_path / "src", "train.py", SLEEPER)
    with pytest.raises(ScriptFailed, match="time limit of 2 s") as info:
        run(script, tmp_path, timeout_s=2, hyperparameters={"p": str(tmp_path / "pid")})
    assert "started" in info.value.log_tail
    assert "woke up" not in (tmp_path / "train.log").read_text(), "the limit was not kept"
    _wait_dead(int((tmp_path / "pid").read_text()))


def test_invalid_inputs(channels, tmp_path) -> None:
    with pytest.raises(InvalidInput, match="training script not found"):
        run(tmp_path / "absent.py", tmp_path)
    script = write(tmp_path / "src", "train.py", "pass\n")
    with pytest.raises(InvalidInput, match="invalid channel name"):
        run(script, tmp_path, channels={"bad name": channels["train"]})
    with pytest.raises(InvalidInput, match="no such file or folder"):
        run(script, tmp_path, channels={"train": tmp_path / "nothing"})
    stop = threading.Event()
    stop.set()
    with pytest.raises(JobStopped):
        run(script, tmp_path, stop=stop)


def test_a_file_that_vanishes_while_the_folder_is_copied_is_left_out(tmp_path) -> None:
    # Another process's temporary file (a modelyard home beside the script stages and deletes
    # files as its jobs run) is listed, then gone before its turn to be copied.
    source = tmp_path / "src"
    (source / "stage").mkdir(parents=True)
    (source / "train.py").write_text("pass\n")
    (source / "kept.tmp").write_text("x")
    (source / "stage" / "model.json").write_text("{}")
    vanished: list[str] = []

    def ignore(folder: str, names: list[str]) -> set[str]:
        if Path(folder) == source:  # listed; now both go, as another process deletes them
            (source / "kept.tmp").unlink()
            (source / "stage" / "model.json").unlink()
            (source / "stage").rmdir()
            vanished.extend(["kept.tmp", "stage"])
        return set()

    copy_code(source, tmp_path / "code", ignore)
    assert vanished == ["kept.tmp", "stage"]
    assert sorted(p.name for p in (tmp_path / "code").iterdir()) == ["train.py"]


def test_a_file_that_cannot_be_copied_fails_naming_it(tmp_path) -> None:
    script = write(tmp_path / "src", "train.py", "pass\n")
    os.mkfifo(script.parent / "pipe")  # a named pipe is not a file that can be copied
    with pytest.raises(InvalidInput) as info:
        run(script, tmp_path)
    message = info.value.message
    assert message.startswith(f"cannot copy the training script's folder {script.parent}: ")
    assert f"{script.parent / 'pipe'}: " in message and "named pipe" in message


# ---- metric definitions ------------------------------------------------------------------


def test_definition_regex_must_compile_with_one_group() -> None:
    assert MetricDefinition("auc", r"auc=([0-9.]+)").scan("auc=0.5") == {"auc": 0.5}
    with pytest.raises(InvalidInput, match=r"'auc'.*exactly one capture group.*has 0"):
        MetricDefinition("auc", r"auc=[0-9.]+")
    with pytest.raises(InvalidInput, match=r"'auc'.*has 2"):
        MetricDefinition("auc", r"(auc)=([0-9.]+)")
    with pytest.raises(InvalidInput, match=r"'auc'.*does not compile"):
        MetricDefinition("auc", r"auc=([0-9.]+")


def test_parse_splits_at_the_first_equals_sign() -> None:
    parsed = parse_metric_definition("validation:auc=validation-auc=([0-9.]+)")
    assert parsed == MetricDefinition("validation:auc", "validation-auc=([0-9.]+)")
    assert parse_metric_definition("rmse") == key_value_definition("rmse")
    for bad in ("=x(1)", "auc=", "two words"):
        with pytest.raises(InvalidInput):
            parse_metric_definition(bad)


def test_eval_log_scanner_reads_xgboost_and_lightgbm_lines() -> None:
    scan = EvalLogScanner().scan
    assert scan("[12]\ttrain-logloss:0.1\tvalidation-auc:0.97") == {
        "train:logloss": 0.1,
        "validation:auc": 0.97,
    }
    assert scan("[3]\tvalidation-error@0.7:0.25\tvalidation-map@3-:1e-2") == {
        "validation:error@0.7": 0.25,
        "validation:map@3-": 0.01,
    }
    assert scan("[5]\tvalid_0's auc: 0.9\ttraining's binary_logloss: 0.3") == {
        "valid_0:auc": 0.9,
        "training:binary_logloss": 0.3,
    }
    assert scan("train-logloss:0.1") == {}  # no round number: not an eval line
    assert scan("[1]\tvalidation-rmse:nan") == {}


def test_scanner_keeps_history_and_reads_key_values_only_when_asked() -> None:
    scanner = MetricScanner([key_value_definition("rmse")])
    assert scanner.feed("accuracy=0.5 loss: 0.3") == {}  # not asked for: not guessed
    assert scanner.feed("rmse=0.4") == {"rmse": 0.4}
    assert scanner.feed("val_rmse=9") == {}  # another word that ends in rmse
    assert scanner.feed("rmse: 0.2") == {"rmse": 0.2}
    assert scanner.feed("[0]\ttrain-rmse:0.3") == {"train:rmse": 0.3}
    assert scanner.history == {"rmse": [0.4, 0.2], "train:rmse": [0.3]}
    assert scanner.final() == {"rmse": 0.2, "train:rmse": 0.3}
    assert MetricScanner([], include_defaults=False).feed("[0]\ttrain-rmse:0.3") == {}
