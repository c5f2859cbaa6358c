"""``modelyard tune`` (and ``tune show|list|stop``) through the console script."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, CliResult, ModelFiles, interrupt_while_waiting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cancer_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    folder = tmp_path_factory.mktemp("data")
    frame.iloc[:400].to_csv(folder / "train.csv", index=False)
    frame.iloc[400:].to_csv(folder / "val.csv", index=False)
    return folder / "train.csv", folder / "val.csv"


@dataclass(frozen=True)
class Tuned:
    """One finished tuning run, shared by the read-only tests of this module."""

    cli: Cli
    result: CliResult
    summary: dict[str, Any]

    @property
    def job(self) -> str:
        return str(self.summary["job"]["name"])


@pytest.fixture(scope="module")
def tuned(
    tmp_path_factory: pytest.TempPathFactory,
    make_cli: Callable[[Path], Cli],
    cancer_files: tuple[Path, Path],
) -> Tuned:
    train, val = cancer_files
    cli = make_cli(tmp_path_factory.mktemp("tuned") / "home")
    result = cli(
        "tune", "cancer", "--algorithm", "xgboost", "--train", train, "--validation", val,
        "--target", "target", "--objective", "validation:auc",
        "--range", "max_depth=int:2:6", "--range", "eta=float:0.05:0.3:log",
        "--hp", "num_round=15", "--max-trials", "4", "--parallel", "2", "--seed", "1",
        "--alias", "best", "--json",
    )  # fmt: skip
    return Tuned(cli, result, result.ok().json())


# -- the happy path ----------------------------------------------------------------------------


def test_tune_reports_every_trial_and_the_best(tuned: Tuned) -> None:
    summary = tuned.summary
    assert summary["job"]["status"] == "Completed"
    assert (summary["objective"], summary["direction"]) == ("validation:auc", "maximize")
    trials = summary["trials"]
    assert len(trials) == 4
    assert {t["state"] for t in trials} == {"Completed"}
    assert all(t["name"].startswith(tuned.job + "-") for t in trials)
    for t in trials:
        hp = t["hyperparameters"]
        assert hp["num_round"] == "15"
        assert 2 <= int(hp["max_depth"]) <= 6
        assert 0.05 <= float(hp["eta"]) <= 0.3
    best = summary["best_trial"]
    assert best["value"] == max(t["value"] for t in trials)
    assert best["name"] in {t["name"] for t in trials}
    assert summary["job"]["artifact"] == {"best_trial": best["name"]}
    assert summary["job"]["metrics"]["validation:auc"] == best["value"]
    assert summary["job"]["model_version"] == 1


def test_only_the_best_trial_is_registered(tuned: Tuned) -> None:
    cli, best = tuned.cli, tuned.summary["best_trial"]
    version = cli("models", "show", "cancer@best", "--json").ok().json()
    assert version["version"] == 1
    assert version["source"]["kind"] == "tuning_job"
    assert best["name"] in version["source"]["uri"]
    assert version["metrics"]["validation:auc"] == best["value"]
    versions = cli("models", "versions", "cancer", "--json").ok().json()
    assert [v["version"] for v in versions] == [1]
    models = cli("models", "list", "--json").ok().json()
    assert [m["name"] for m in models] == ["cancer"]


def test_tune_list_and_show(tuned: Tuned) -> None:
    cli = tuned.cli
    listed = cli("tune", "list", "--json").ok().json()
    assert [(j["name"], j["kind"], j["status"]) for j in listed] == [
        (tuned.job, "tuning", "Completed")
    ]
    assert "model 'other' does not exist" in cli("tune", "list", "--model", "other").error_line(3)
    shown = cli("tune", "show", tuned.job).ok().out
    best = tuned.summary["best_trial"]["name"]
    assert f"best trial {best}" in shown
    assert "registered cancer:1" in shown
    assert "4 completed" in shown
    as_json = cli("tune", "show", tuned.job, "--json").ok().json()
    assert as_json["best_trial"] == tuned.summary["best_trial"]
    assert as_json["plots"] == []


def test_tune_show_writes_plots(tuned: Tuned, tmp_path: Path) -> None:
    folder = tmp_path / "plots"
    shown = tuned.cli("tune", "show", tuned.job, "--plots", folder, "--json").ok().json()
    names = ("optimization_history", "param_importances")
    expected = {str(folder / f"{n}.{ext}") for n in names for ext in ("png", "html")}
    # The HTML pages share one plotly.min.js beside them (offline, not 4.7 MB in each).
    assert set(shown["plots"]) == expected | {str(folder / "plotly.min.js")}
    for name in names:
        assert (folder / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        html = (folder / f"{name}.html").read_text()
        assert "<html" in html.lower() and "validation:auc" in html
        assert 'src="plotly.min.js"' in html


def test_trials_are_training_jobs(tuned: Tuned) -> None:
    jobs = tuned.cli("jobs", "list", "--json").ok().json()
    trials = {j["name"]: j for j in jobs if j["name"] != tuned.job}
    assert sorted(trials) == sorted(t["name"] for t in tuned.summary["trials"])
    for job in trials.values():
        assert (job["kind"], job["status"], job["parent"]) == ("training", "Completed", tuned.job)
        assert job["model_version"] is None  # trials stage; only the tuning job registers


def test_tune_show_and_stop_refuse_what_they_cannot_do(tuned: Tuned) -> None:
    cli = tuned.cli
    trial = tuned.summary["trials"][0]["name"]
    missing, of_trial, stopped = cli.many(
        ("tune", "show", "no-such-job"),
        ("tune", "show", trial),
        ("tune", "stop", tuned.job),
    )
    assert "no-such-job" in missing.error_line(3)
    line = of_trial.error_line(2)
    assert trial in line and "not a tuning job" in line
    line = stopped.error_line(4)
    assert tuned.job in line and "Completed" in line
    assert cli("tune", "list", "--json").ok().json()[0]["status"] == "Completed"


def test_tune_show_of_a_plain_training_job(cli: Cli, cancer_files: tuple[Path, Path]) -> None:
    train, _ = cancer_files
    trained = cli("train", "plain", "--algorithm", "xgboost", "--train", train,
                  "--target", "target", "--hp", "num_round=5", "--json")  # fmt: skip
    name = trained.ok().json()["name"]
    line = cli("tune", "show", name).error_line(2)
    assert name in line and "training job, not a tuning job" in line
    assert cli("tune", "stop", name).error_line(2)
    assert cli("tune", "list", "--json").ok().json() == []


# -- bad requests ------------------------------------------------------------------------------


def test_bad_tuning_requests_change_nothing(
    cli: Cli, cancer_files: tuple[Path, Path], model_files: ModelFiles
) -> None:
    train, val = cancer_files
    cli("models", "register", "cancer", model_files.xgb_json, "--flavor", "xgboost").ok()
    before = cli.snapshot()
    base = ("tune", "cancer", "--train", train, "--validation", val, "--target", "target",
            "--max-trials", "3")  # fmt: skip
    xgb = (*base, "--algorithm", "xgboost", "--objective", "validation:auc",
           "--hp", "num_round=10")  # fmt: skip
    eta = ("--range", "eta=float:0.1:0.3")
    cases: list[tuple[tuple[str | Path, ...], list[str]]] = [
        ((*xgb, "--range", "max_depth=int:10:3"), ["max_depth=int:10:3", "LOW", "HIGH"]),
        ((*xgb, "--range", "eta=float:a:b"), ["eta=float:a:b", "must be numbers"]),
        ((*xgb, "--range", "x=nope:1:2"), ["x=nope:1:2", "unknown kind 'nope'"]),
        ((*xgb, "--range", "max_depth"), ["invalid range 'max_depth'", "NAME=int:LOW:HIGH"]),
        ((*xgb, "--range", "nope=int:1:3"), ["'nope'", "known:", "max_depth", "eta"]),
        ((*xgb, "--range", "eta=float:0.1:5"), ["eta", "[0, 1]"]),
        ((*xgb, "--hp", "max_depth=3", "--range", "max_depth=int:2:4"),
         ["max_depth", "both fixed", "tuned"]),
        ((*xgb, "--strategy", "grid", *eta), ["grid", "step", "eta=float:0.1:0.3"]),
        ((*xgb, "--strategy", "annealing", *eta), ["annealing", "bayesian", "grid"]),
        ((*xgb, *eta, "--max-trials", "0"), ["number of trials", "got 0"]),
        (("tune", "cancer", "--algorithm", "xgboost", "--train", train.parent / "none.csv",
          "--target", "target", "--objective", "validation:auc", *eta),
         ["none.csv", "does not exist"]),
        ((*base, "--algorithm", "xgboost", "--objective", "validation:foo", *eta),
         ["validation:foo", "maximize or minimize it"]),
        (("tune", "cancer", "--algorithm", "xgboost", "--train", train, "--target", "target",
          "--objective", "validation:auc", "--hp", "num_round=10", *eta),
         ["validation:auc", "measured on validation data", "has none"]),
        ((*base, "--algorithm", "random-forest", "--objective", "validation:accuracy",
          "--range", "n_estimators=int:5:10", "--early-stopping"),
         ["random-forest", "per-round", "without early stopping"]),
    ]  # fmt: skip
    results = cli.many(*(args for args, _ in cases))
    for result, (args, words) in zip(results, cases, strict=True):
        line = result.error_line(2)
        for word in words:
            assert word in line, (args, line)
    assert cli.snapshot() == before
    assert cli("jobs", "list", "--json").ok().json() == []
    assert cli("tune", "list", "--json").ok().json() == []


def test_an_objective_the_trials_do_not_report_fails_the_job(
    cli: Cli, cancer_files: tuple[Path, Path]
) -> None:
    train, val = cancer_files
    failed = cli(
        "tune", "cancer", "--algorithm", "xgboost", "--train", train, "--validation", val,
        "--target", "target", "--objective", "validation:accuracy", "--maximize",
        "--range", "max_depth=int:2:4", "--hp", "num_round=10", "--max-trials", "3",
    )  # fmt: skip
    assert failed.code == 8, failed.err
    assert "Traceback" not in failed.err
    started, line = failed.err.strip().splitlines()
    assert started.startswith("tuning job cancer-tune-") and "started" in started
    assert line.startswith("error: tuning job cancer-tune-") and " failed: " in line
    assert "'validation:accuracy' is not among the metrics" in line
    assert "validation:auc" in line and "validation:logloss" in line
    listed = cli("tune", "list", "--json").ok().json()
    assert [(j["status"], j["model_version"]) for j in listed] == [("Failed", None)]
    assert "validation:accuracy" in listed[0]["failure_reason"]
    # It gave up after the first trial that finished rather than running all three.
    trials = [j for j in cli("jobs", "list", "--json").ok().json() if j["kind"] == "training"]
    assert len(trials) == 1
    assert cli("models", "list", "--json").ok().json() == []


def test_ctrl_c_while_waiting_says_the_tuning_job_runs_on(
    cli: Cli, cancer_files: tuple[Path, Path]
) -> None:
    train, val = cancer_files
    name, err = interrupt_while_waiting(
        cli,
        ["tune", "cancer", "--algorithm", "xgboost", "--train", train, "--validation", val,
         "--target", "target", "--objective", "validation:auc", "--range", "max_depth=int:2:6",
         "--hp", "num_round=15", "--max-trials", "40"],
        r"tuning job (\S+) started",
    )  # fmt: skip
    assert err.strip() == (
        f"interrupted: no longer waiting; tuning job {name} keeps running in the background "
        f"(see it with `modelyard tune show {name}`, stop it with `modelyard tune stop {name}`)"
    )
    assert cli("tune", "stop", name).ok()  # what the line says works: the job was still there
    platform = cli.platform()
    try:
        ended = platform.jobs.wait(name, timeout_s=300)
    finally:
        platform.close()
    assert ended.status.value in ("Stopped", "Completed")
