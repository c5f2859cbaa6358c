"""``modelyard train`` and ``modelyard jobs`` through the console script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli


@pytest.fixture(scope="module")
def cancer_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    folder = tmp_path_factory.mktemp("data")
    frame.iloc[:400].to_csv(folder / "train.csv", index=False)
    frame.iloc[400:].to_csv(folder / "val.csv", index=False)
    return folder / "train.csv", folder / "val.csv"


def test_train_then_inspect_the_job(cli: Cli, cancer_files: tuple[Path, Path]) -> None:
    train, val = cancer_files
    done = cli(
        "train",
        "cancer",
        "--algorithm",
        "xgboost",
        "--train",
        train,
        "--validation",
        val,
        "--target",
        "target",
        "--hp",
        "num_round=15",
        "--alias",
        "staging",
    )
    assert done.code == 0, done.err
    assert "registered cancer:1" in done.out and "validation:auc" in done.out
    jobs: list[dict[str, Any]] = cli("jobs", "list", "--json").ok().json()
    assert [(j["status"], j["model_version"]) for j in jobs] == [("Completed", 1)]
    name = jobs[0]["name"]
    shown = cli("jobs", "show", name, "--json").ok().json()
    assert shown["hyperparameters"] == {"num_round": "15"}
    assert shown["metrics"]["validation:auc"] > 0.9
    assert "[progress] 15/15" in cli("jobs", "logs", name).ok().out
    version = cli("models", "show", "cancer@staging", "--json").ok().json()
    assert version["source"] == {"kind": "training_job", "uri": name}


def test_bad_training_requests(cli: Cli, cancer_files: tuple[Path, Path]) -> None:
    train, _ = cancer_files
    results = cli.many(
        ("train", "m", "--algorithm", "xgboost", "--train", train, "--hp", "max_depth=-1"),
        ("train", "m", "--algorithm", "xgboost", "--train", train, "--hp", "nope=1"),
        ("train", "m", "--algorithm", "xgboost", "--train", "/no/such.csv"),
        ("train", "m", "--algorithm", "deep-magic", "--train", train),
        ("train", "m", "--train", train),
        ("jobs", "show", "no-such-job"),
    )
    expected = [
        (2, "max_depth"),
        (2, "nope"),
        (2, "does not exist"),
        (2, "deep-magic"),
        (2, "exactly one"),
        (3, "no-such-job"),
    ]
    for result, (code, words) in zip(results, expected, strict=True):
        assert words in result.error_line(code), result.err
    assert cli("jobs", "list", "--json").ok().json() == []


def test_data_named_like_a_pattern_trains_on_that_file(
    cli: Cli, cancer_files: tuple[Path, Path], tmp_path: Path
) -> None:
    train, val = cancer_files
    literal_train, literal_val = tmp_path / "train[1].csv", tmp_path / "val[1].csv"
    literal_train.write_bytes(train.read_bytes())
    literal_val.write_bytes(val.read_bytes())
    done = cli(
        "train", "m", "--algorithm", "xgboost", "--train", literal_train,
        "--validation", literal_val, "--target", "target", "--hp", "num_round=3",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "registered m:1" in done.out
    missing = cli("train", "m", "--algorithm", "xgboost", "--train", tmp_path / "nope[1].csv")
    assert "the train data" in missing.error_line(2) and "nope[1].csv does not exist" in missing.err


def test_a_failing_job_exits_non_zero_with_the_reason(
    cli: Cli, cancer_files: tuple[Path, Path]
) -> None:
    train, _ = cancer_files
    failed = cli(
        "train", "m", "--algorithm", "xgboost", "--train", train, "--target", "no_such_column"
    )
    assert failed.code == 8 and "Traceback" not in failed.err and failed.out == ""
    started, line = failed.err.strip().splitlines()
    assert started.startswith("job m-") and "started" in started
    assert line.startswith("error: job m-") and "failed" in line and "no_such_column" in line
    jobs = cli("jobs", "list", "--json").ok().json()
    assert jobs[0]["status"] == "Failed"
    assert cli("jobs", "stop", jobs[0]["name"]).error_line(4)
    # "m" was never registered, but its (failed) first training names it: it is listed.
    assert cli("jobs", "list", "--model", "m", "--json").ok().json() == jobs


def test_jobs_list_refuses_a_model_nobody_knows(cli: Cli, cancer_files: tuple[Path, Path]) -> None:
    """Found in review: ``jobs list --model nope`` printed an empty list and exited 0, where
    every other command refuses a model that does not exist."""
    line = cli("jobs", "list", "--model", "nope").error_line(3)
    assert "model 'nope' does not exist" in line
    assert "model 'nope' does not exist" in cli("tune", "list", "--model", "nope").error_line(3)
    assert "name" in cli("jobs", "list", "--model", "no/such").error_line(2)
    train, _ = cancer_files
    cli("train", "known", "--algorithm", "xgboost", "--train", train, "--target", "target",
        "--hp", "num_round=2", "--json").ok()  # fmt: skip
    assert len(cli("jobs", "list", "--model", "known", "--json").ok().json()) == 1
    # A registered model without tuning jobs has none to list: that is not an error.
    assert cli("tune", "list", "--model", "known", "--json").ok().json() == []


PYFUNC_SCRIPT = '''
import os
from pathlib import Path

MODEL = """
import numpy as np


class Model:
    def load(self, artifacts_dir):
        pass

    def predict(self, data):
        return np.asarray(data, dtype=float)[:, 0] > 15
"""

Path(os.environ["SM_MODEL_DIR"], "model.py").write_text(MODEL)
'''


@pytest.fixture
def pyfunc_script(tmp_path: Path) -> Path:
    """A script-mode training script that leaves a pyfunc model (code) in SM_MODEL_DIR."""
    script = tmp_path / "src" / "train.py"  # its folder is copied for the job: its own
    script.parent.mkdir()
    script.write_text(PYFUNC_SCRIPT)
    return script


def test_train_a_pyfunc_model_needs_and_takes_trust_code(
    cli: Cli, cancer_files: tuple[Path, Path], pyfunc_script: Path
) -> None:
    """Issue 14, defect 7: the failure said "pass --trust-code", which `train` did not take."""
    train, _ = cancer_files
    args = ("train", "m", "--script", pyfunc_script, "--train", train, "--flavor", "pyfunc")
    untrusted, trusted = cli.many(args, (*args, "--trust-code", "--json"))
    line = untrusted.err.strip().splitlines()[-1]
    assert untrusted.code == 8 and "trust the model's code" in line, untrusted.err
    job = trusted.ok().json()
    assert job["status"] == "Completed", job
    version = cli("models", "show", "m:1", "--json").ok().json()
    assert version["flavor"] == "pyfunc"
    assert version["trust"]["user_code"] is True
    assert version["source"] == {"kind": "training_job", "uri": job["name"]}


def test_a_bad_hyperparameter_name_is_refused_before_training(
    cli: Cli, cancer_files: tuple[Path, Path], pyfunc_script: Path
) -> None:
    """Found in review: a script-mode job trained in full, then registering refused ' depth'."""
    train, _ = cancer_files
    line = cli("train", "m", "--script", pyfunc_script, "--train", train, "--flavor", "pyfunc",
               "--trust-code", "--hp", " depth=3").error_line(2)  # fmt: skip
    assert "hyperparameter name ' depth'" in line
    assert cli("jobs", "list", "--json").ok().json() == []


def test_a_training_script_does_not_see_the_platforms_settings(
    cli: Cli, cancer_files: tuple[Path, Path], pyfunc_script: Path
) -> None:
    """Found in review: a user's script inherited the worker's MODELYARD_* variables, the
    metadata database URL (and its password) among them."""
    pyfunc_script.write_text(
        "import json, os\n"
        "names = sorted(k for k in os.environ if k.startswith('MODELYARD_'))\n"
        "print('modelyard variables:', json.dumps(names))\n"
        "print('kept:', bool(os.environ.get('PATH')), os.environ.get('SM_CURRENT_HOST'))\n"
        + PYFUNC_SCRIPT
    )
    train, _ = cancer_files
    db_url = f"sqlite:///{cli.home / 'modelyard.db'}"
    done = cli(
        "train", "m", "--script", pyfunc_script, "--train", train, "--flavor", "pyfunc",
        "--trust-code", "--json", env=cli.env(MODELYARD_DB_URL=db_url),
    ).ok()  # fmt: skip
    job = done.json()
    assert job["status"] == "Completed", job
    log = cli("jobs", "logs", job["name"]).ok().out
    assert "modelyard variables: []" in log, log
    assert "kept: True algo-1" in log, log
