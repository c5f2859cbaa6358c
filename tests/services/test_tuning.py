"""Tuning jobs end to end: a real coordinator and real trial-runner processes, the Optuna study
in the real metadata database (SQLite and PostgreSQL), real models."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Job, JobKind, JobStatus
from modelyard.errors import Conflict, InvalidInput
from modelyard.services.tuning import TuningSummary
from tests.waiting import wait_for

# A SageMaker script-mode script whose score is best at x = 0.7. With `--slow_after MARKER` it
# trains the first trial quickly and sleeps in every later one (to be stopped or killed there);
# `--slow_first MARKER` sleeps in the first trial only; `--fail_below T` crashes for x < T;
# `--sleep S` makes every trial take S seconds longer; `--meet FOLDER` makes the first two
# trials wait for each other (and fail if the other never comes), so they surely run at once.
SCRIPT = """
import argparse, os, pathlib, time
import pandas as pd, xgboost as xgb

parser = argparse.ArgumentParser()
parser.add_argument("-x", type=float)  # one-letter names come as -x (the toolkit)
parser.add_argument("--slow_after", default="")
parser.add_argument("--slow_first", default="")
parser.add_argument("--fail_below", type=float, default=-1.0)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--meet", default="")
args, _ = parser.parse_known_args()
if args.x < args.fail_below:
    raise SystemExit(f"x={args.x} is below {args.fail_below}")
if args.meet:
    here = pathlib.Path(args.meet)
    (here / str(os.getpid())).touch()
    deadline = time.monotonic() + 90
    while len(list(here.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise SystemExit("no other trial ran at the same time")
        time.sleep(0.05)
if args.slow_after:
    marker = pathlib.Path(args.slow_after)
    if marker.exists():
        print("sleeping", flush=True)
        time.sleep(120)
    marker.touch()
if args.slow_first and not pathlib.Path(args.slow_first).exists():
    pathlib.Path(args.slow_first).touch()
    print("sleeping", flush=True)
    time.sleep(120)
time.sleep(args.sleep)
frame = pd.read_csv(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"))
data = xgb.DMatrix(frame.drop(columns=["target"]), label=frame["target"])
booster = xgb.train({"objective": "binary:logistic", "nthread": 1}, data, num_boost_round=3)
booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model"))
print(f"score={1 - (args.x - 0.7) ** 2:.6f}", flush=True)
"""


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    yield p
    p.close()


@pytest.fixture
def sqlite_platform(tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home"))
    yield p
    p.close()


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    folder = tmp_path_factory.mktemp("cancer")
    frame.iloc[:420].to_csv(folder / "train.csv", index=False)
    frame.iloc[420:].to_csv(folder / "validation.csv", index=False)
    return folder / "train.csv", folder / "validation.csv"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    # Its own folder: the script's whole folder is copied for every trial (SageMaker's
    # source_dir), and ``tmp_path`` holds the platform's home, where other trials write.
    path = tmp_path / "src" / "train.py"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    return path


def _xgboost_tuning(platform: Platform, cancer: tuple[Path, Path], **kwargs: Any) -> Job:
    train, validation = cancer
    request: dict[str, Any] = {
        "train": str(train),
        "validation": str(validation),
        "target": "target",
        "algorithm": "xgboost",
        "objective": "validation:auc",
        "ranges": ["max_depth=int:2:6", "eta=float:0.05:0.5:log"],
        "hyperparameters": {"num_round": 15},
        "seed": 7,
        **kwargs,
    }
    return platform.tuning.submit("cancer", **request)


def _script_tuning(
    platform: Platform, cancer: tuple[Path, Path], script: Path, **kwargs: Any
) -> Job:
    request: dict[str, Any] = {
        "train": str(cancer[0]),
        "script": str(script),
        "objective": "score",
        "maximize": True,
        "metric_definitions": ["score=score=([0-9.]+)"],
        "ranges": ["x=float:0:1"],
        "seed": 3,
        **kwargs,
    }
    return platform.tuning.submit("scripted", **request)


# Waits that start job processes (a coordinator, its runners, their imports of xgboost and
# optuna) before the condition can hold: longer than the default, for a loaded machine.
JOB_WAIT_S = 90


def _sleeping_trial(platform: Platform, name: str) -> Job:
    """Wait for a trial of tuning job ``name`` that runs and has printed "sleeping"; its job."""

    def observe() -> dict[str, str]:  # trial: status, and whether it sleeps
        return {
            t.name: t.job.status.value + (" sleeping" if _sleeps(platform, t.job) else "")
            for t in platform.tuning.summary(name).trials
        }

    trials = wait_for(
        "a trial sleeping in its script",
        observe,
        lambda seen: "InProgress sleeping" in seen.values(),
        timeout=JOB_WAIT_S,
    )
    return platform.jobs.get(next(n for n, s in trials.items() if s == "InProgress sleeping"))


def _sleeps(platform: Platform, job: Job) -> bool:
    return job.status is JobStatus.IN_PROGRESS and "sleeping" in platform.jobs.logs(job.name)


def _wait_started(platform: Platform, name: str) -> None:
    wait_for(
        f"tuning job {name} to start",
        lambda: platform.tuning.get(name).status,
        lambda status: status is not JobStatus.PENDING,
        timeout=JOB_WAIT_S,
    )


def _wait_running_trials(platform: Platform, name: str, count: int) -> None:
    wait_for(
        f"{count} trials running",
        lambda: [t.job.status.value for t in platform.tuning.summary(name).trials],
        lambda states: states.count(JobStatus.IN_PROGRESS.value) == count,
        timeout=JOB_WAIT_S,
    )


@contextmanager
def _study(platform: Platform, name: str) -> Iterator[optuna.Study]:
    storage = optuna.storages.RDBStorage(platform.settings.resolved_db_url)
    try:
        yield optuna.load_study(study_name=name, storage=storage)
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _wait_gone(pid: int) -> None:
    def state() -> str | None:  # the state letter in /proc (R, S, Z …), None when gone
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return None

    # A zombie nobody reaped yet is gone too.
    wait_for(f"process {pid} to exit", state, lambda s: s in (None, "Z", "X"), timeout=JOB_WAIT_S)


def test_parallel_trials_from_two_processes_share_one_study(
    platform: Platform, cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    # The first two trials wait for each other: they overlap however the runners' start-up
    # times fall, or fail if the runners do not run trials at once.
    meet = tmp_path / "meet"
    meet.mkdir()
    job = _script_tuning(
        platform,
        cancer,
        script,
        max_trials=4,
        parallel=2,
        aliases=("best",),
        hyperparameters={"meet": str(meet)},
    )
    done = platform.tuning.wait(job.name, timeout_s=240)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    summary: TuningSummary = platform.tuning.summary(job.name)

    trials = summary.trials
    assert [t.name for t in trials] == [f"{job.name}-{i:03d}" for i in range(4)]
    assert all(t.state == "Completed" and t.value is not None for t in trials), [
        (t.name, t.state, t.job.failure_reason) for t in trials
    ]
    assert all(t.job.kind is JobKind.TRAINING and t.job.parent == job.name for t in trials)
    assert len({t.job.pid for t in trials}) >= 2, "the trials ran in one process"
    assert any(_overlap(a.job, b.job) for a in trials for b in trials if a.job.pid != b.job.pid), (
        "no two trials ran at once"
    )

    # One study, written by both runners: each trial job has its Optuna trial, same value.
    with _study(platform, job.name) as study:
        by_job = {t.user_attrs["job"]: t for t in study.trials}
    assert set(by_job) == {t.name for t in trials}
    for trial in trials:
        frozen = by_job[trial.name]
        assert frozen.state is optuna.trial.TrialState.COMPLETE
        assert frozen.value == pytest.approx(trial.value)
        sampled = {k: repr(v) if isinstance(v, float) else str(v) for k, v in frozen.params.items()}
        assert trial.job.hyperparameters == {"meet": str(meet), **sampled}

    # Only the best trial became a version, with its metrics and a link to the trial.
    best = max(trials, key=lambda t: t.value or 0)
    assert summary.best is not None and summary.best.name == best.name
    versions = platform.registry.list_versions("scripted")
    assert len(versions) == 1
    version = platform.registry.get_version("scripted@best")
    assert version.version == done.model_version == versions[0].version
    assert version.metrics == best.job.metrics
    assert version.source.kind == "tuning_job" and version.source.uri == f"{job.name}/{best.name}"
    assert version.params["x"] == best.job.hyperparameters["x"]
    rows = pd.read_csv(cancer[1]).drop(columns=["target"])
    loaded = platform.registry.load(version.ref)
    try:
        assert loaded.predict(rows).shape[0] == len(rows)
    finally:
        loaded.unload()


def _overlap(a: Job, b: Job) -> bool:
    assert a.started_at and a.ended_at and b.started_at and b.ended_at
    return a.started_at < b.ended_at and b.started_at < a.ended_at


def test_a_killed_runner_fails_its_trial_and_the_search_goes_on(
    platform: Platform, cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    job = _script_tuning(
        platform,
        cancer,
        script,
        max_trials=3,
        hyperparameters={"slow_first": str(tmp_path / "marker")},
    )
    victim = _sleeping_trial(platform, job.name)
    os.kill(victim.pid, signal.SIGKILL)  # the runner process, mid-trial
    # The script itself dies with its runner (and with it, this trial's sleep).
    done = platform.tuning.wait(job.name, timeout_s=180)
    trials = {t.name: t for t in platform.tuning.summary(job.name).trials}
    killed = trials[victim.name]
    assert killed.state == "Failed"
    assert f"pid {victim.pid}" in (killed.job.failure_reason or "")
    with _study(platform, job.name) as study:
        states = {t.user_attrs["job"]: t.state for t in study.trials}
    assert states[victim.name] is optuna.trial.TrialState.FAIL, "the trial was left running"
    # The coordinator started a new runner, which ran the remaining trials.
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    assert [t.state for t in trials.values()].count("Completed") == 2
    assert len({t.job.pid for t in trials.values()}) == 2


def test_stop_a_tuning_job_keeps_the_best_finished_trial(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    platform = sqlite_platform
    job = _script_tuning(
        platform,
        cancer,
        script,
        max_trials=5,
        hyperparameters={"slow_after": str(tmp_path / "marker")},
    )
    sleeper = _sleeping_trial(platform, job.name)
    runner_pid = sleeper.pid
    platform.tuning.stop(job.name)
    done = platform.tuning.wait(job.name, timeout_s=90)
    assert done.status is JobStatus.STOPPED, done.failure_reason
    trials = platform.tuning.summary(job.name).trials
    assert [t.state for t in trials] == ["Completed", "Stopped"]
    assert done.model_version is not None, "the finished trial's model was not registered"
    assert platform.registry.get_version(f"scripted:{done.model_version}").metrics == (
        trials[0].job.metrics
    )
    assert runner_pid is not None
    _wait_gone(runner_pid)
    with pytest.raises(Conflict, match="already ended"):
        platform.tuning.stop(job.name)


def test_failed_trials_are_recorded_and_the_search_goes_on(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path
) -> None:
    platform = sqlite_platform
    job = _script_tuning(
        platform,
        cancer,
        script,
        ranges=["x=cat:0.1,0.9,0.2,0.6"],
        strategy="grid",
        max_trials=10,
        hyperparameters={"fail_below": 0.5},
    )
    done = platform.tuning.wait(job.name, timeout_s=180)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    trials = platform.tuning.summary(job.name).trials
    assert len(trials) == 4, "a grid runs each point once (max_trials is capped)"
    by_x = {t.job.hyperparameters["x"]: t for t in trials}
    assert {x: t.state for x, t in by_x.items()} == {
        "0.1": "Failed",
        "0.2": "Failed",
        "0.6": "Completed",
        "0.9": "Completed",
    }
    assert "is below 0.5" in (by_x["0.1"].job.failure_reason or "")
    best = platform.registry.get_version(f"scripted:{done.model_version}")
    assert best.params["x"] == "0.6"  # 1 - (0.6 - 0.7)^2 beats 1 - (0.9 - 0.7)^2


def test_the_failure_budget_ends_the_job(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path
) -> None:
    platform = sqlite_platform
    job = _script_tuning(
        platform,
        cancer,
        script,
        max_trials=6,
        max_failed_trials=1,
        hyperparameters={"fail_below": 2.0},
    )
    done = platform.tuning.wait(job.name, timeout_s=180)
    assert done.status is JobStatus.FAILED
    assert "2 trials failed, more than the failure budget (1)" in (done.failure_reason or "")
    assert "is below 2.0" in (done.failure_reason or "")
    assert len(platform.tuning.summary(job.name).trials) == 2, "it went on past the budget"
    assert platform.registry.list_models() == []


def test_hyperband_prunes_on_per_round_metrics(
    sqlite_platform: Platform, cancer: tuple[Path, Path]
) -> None:
    platform = sqlite_platform
    job = _xgboost_tuning(
        platform,
        cancer,
        objective="validation:logloss",
        strategy="hyperband",
        ranges=["max_depth=int:2:6", "eta=float:0.01:0.3:log"],
        hyperparameters={"num_round": 40},
        max_trials=12,
    )
    done = platform.tuning.wait(job.name, timeout_s=240)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    assert done.spec["tuning"]["max_rounds"] == 40
    trials = platform.tuning.summary(job.name).trials
    pruned = [t for t in trials if t.state == "Pruned"]
    assert pruned, [t.state for t in trials]
    with _study(platform, job.name) as study:
        frozen = {t.user_attrs["job"]: t for t in study.trials}
    for trial in pruned:
        assert frozen[trial.name].state is optuna.trial.TrialState.PRUNED
        assert "pruned at round" in (trial.job.failure_reason or "")
        assert trial.job.artifact is None  # nothing staged for a pruned trial
        rounds = max(frozen[trial.name].intermediate_values)
        assert rounds < 40, "a pruned trial trained every round"


def test_warm_start_seeds_the_new_study(
    sqlite_platform: Platform, cancer: tuple[Path, Path]
) -> None:
    platform = sqlite_platform
    first = _xgboost_tuning(platform, cancer, max_trials=3, parallel=1)
    with pytest.raises(Conflict, match="still"):
        _xgboost_tuning(platform, cancer, max_trials=2, warm_start=first.name)
    assert platform.tuning.wait(first.name, timeout_s=180).status is JobStatus.COMPLETED
    second = _xgboost_tuning(platform, cancer, max_trials=2, warm_start=first.name)
    assert platform.tuning.wait(second.name, timeout_s=180).status is JobStatus.COMPLETED
    with _study(platform, second.name) as study:
        seeded = [t for t in study.trials if "warm_start_from" in t.user_attrs]
        assert len(seeded) == 3 and len(study.trials) == 5
    assert len(platform.tuning.summary(second.name).trials) == 2  # seeds are not trial jobs
    with pytest.raises(InvalidInput, match="it optimised maximize validation:auc"):
        _xgboost_tuning(
            platform, cancer, max_trials=2, warm_start=first.name, objective="validation:logloss"
        )
    trial = platform.tuning.summary(first.name).trials[0]
    with pytest.raises(InvalidInput, match="not a tuning job"):
        _xgboost_tuning(platform, cancer, max_trials=2, warm_start=trial.name)


def test_a_killed_coordinator_fails_the_job_and_its_runners_stop(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    platform = sqlite_platform
    job = _script_tuning(
        platform,
        cancer,
        script,
        max_trials=4,
        hyperparameters={"slow_after": str(tmp_path / "marker")},
    )
    sleeper = _sleeping_trial(platform, job.name)
    coordinator = platform.jobs.get(job.name).pid
    assert coordinator is not None
    os.kill(coordinator, signal.SIGKILL)
    failed = wait_for(
        "the tuning job to fail",
        lambda: platform.tuning.get(job.name),
        lambda j: j.status is JobStatus.FAILED,
        timeout=JOB_WAIT_S,
    )
    assert "ended without finishing" in (failed.failure_reason or "")
    stopped = wait_for(
        "the orphaned trial to stop",
        lambda: platform.jobs.get(sleeper.name),
        lambda t: t.status.finished,
        timeout=JOB_WAIT_S,
    )
    assert stopped.status is JobStatus.STOPPED


def test_bad_requests_record_nothing(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path
) -> None:
    platform = sqlite_platform
    attempts: list[tuple[str, Callable[[], Any]]] = [
        (
            "unknown strategy 'annealing'",
            lambda: _xgboost_tuning(platform, cancer, strategy="annealing"),
        ),
        (
            "max_depth is both fixed and tuned: give it a fixed value or a range, not both",
            lambda: _xgboost_tuning(platform, cancer, hyperparameters={"max_depth": 3}),
        ),
        ("(parallel) must be in [1, 64]", lambda: _xgboost_tuning(platform, cancer, parallel=0)),
        (
            "the failed trials tolerated must be 0 or more",
            lambda: _xgboost_tuning(platform, cancer, max_failed_trials=-1),
        ),
        (
            "say whether to maximize or minimize it",
            lambda: _xgboost_tuning(platform, cancer, objective="validation:weird"),
        ),
        (
            "random-forest reports no per-round metrics",
            lambda: _xgboost_tuning(
                platform,
                cancer,
                algorithm="random-forest",
                ranges=["max_depth=int:2:6"],
                hyperparameters={},
                early_stopping=True,
            ),
        ),
        (
            "a script reports its final metrics",
            lambda: _script_tuning(platform, cancer, script, strategy="hyperband"),
        ),
        (
            "must be one of the script's metric definitions (score)",
            lambda: _script_tuning(platform, cancer, script, objective="accuracy"),
        ),
        (
            # A tuned name becomes a param of the registered version, as a fixed one does:
            # refused now, not once every trial has trained.
            "invalid hyperparameter name 'max depth'",
            lambda: _script_tuning(platform, cancer, script, ranges=["max depth=int:1:3"]),
        ),
        ("grid search needs a step", lambda: _xgboost_tuning(platform, cancer, strategy="grid")),
        ("the seed must be in [0, 2**32)", lambda: _xgboost_tuning(platform, cancer, seed=-1)),
        ("does not exist", lambda: _xgboost_tuning(platform, cancer, train="/no/such.csv")),
        (
            "the objective validation:auc is measured on validation data, and this job has none",
            lambda: _xgboost_tuning(platform, cancer, validation=None),
        ),
        (  # every trial failed in its worker
            "early_stopping_rounds needs a validation channel",
            lambda: _xgboost_tuning(
                platform,
                cancer,
                validation=None,
                objective="train:logloss",
                ranges=["early_stopping_rounds=int:2:5"],
            ),
        ),
    ]
    for words, attempt in attempts:
        with pytest.raises(InvalidInput) as info:
            attempt()
        assert words in info.value.message, (words, info.value.message)
    assert platform.jobs.list_jobs() == []


def _join(platform: Platform, name: str) -> subprocess.Popen[str]:
    """``modelyard tune NAME join`` in a process of its own: a runner "on another machine"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(platform.settings.to_environ())
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "modelyard"), "tune", "join", name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_another_runner_joins_the_study(
    platform: Platform, cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    # The coordinator's one runner cannot finish its first trial before another trial runs
    # with it, which only the joined runner can start: so the joiner surely gets work.
    meet = tmp_path / "meet"
    meet.mkdir()
    job = _script_tuning(
        platform, cancer, script, max_trials=5, parallel=1, hyperparameters={"meet": str(meet)}
    )
    _wait_started(platform, job.name)
    joiner = _join(platform, job.name)
    try:
        out, err = joiner.communicate(timeout=180)
    finally:
        joiner.kill()
    assert joiner.returncode == 0, err
    done = platform.tuning.wait(job.name, timeout_s=120)
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    trials = platform.tuning.summary(job.name).trials
    assert [t.state for t in trials] == ["Completed"] * 5, [t.job.failure_reason for t in trials]
    here = [t for t in trials if t.job.pid == joiner.pid]
    assert here, "the joined runner ran no trial"
    assert f"ran {len(here)} trial" in out
    assert len({t.job.pid for t in trials}) == 2


def test_a_stop_reaches_a_joined_runner(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path
) -> None:
    platform = sqlite_platform
    job = _script_tuning(
        platform, cancer, script, max_trials=6, parallel=1, hyperparameters={"sleep": 120}
    )
    _wait_started(platform, job.name)
    joiner = _join(platform, job.name)
    try:
        _wait_running_trials(platform, job.name, 2)
        platform.tuning.stop(job.name)
        joiner.communicate(timeout=60)  # its heartbeat sees the stop within 10 s
    finally:
        joiner.kill()
    assert joiner.returncode == 0
    done = platform.tuning.wait(job.name, timeout_s=90)
    assert done.status is JobStatus.STOPPED
    assert [t.state for t in platform.tuning.summary(job.name).trials] == ["Stopped"] * 2


def test_a_trial_whose_remote_runner_went_silent_is_failed(
    cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from modelyard.storage.sql.engine import make_engine
    from modelyard.storage.sql.job_store import SqlJobStore

    # Silence is judged by the coordinator's own clock (a heartbeat that stops changing), so
    # a machine whose clock is off by hours is not taken for dead: the ghost's stamps below
    # are a day old and a day ahead, and it still gets its full 3 s.
    platform = build(load_settings({}, home=tmp_path / "home", trial_stale_s=3))
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        job = _script_tuning(platform, cancer, script, max_trials=3, parallel=1)
        ghost = f"{job.name}-002"
        jobs = SqlJobStore(engine)
        jobs.create_job(
            Job(
                name=ghost,
                kind=JobKind.TRAINING,
                model_name="scripted",
                status=JobStatus.PENDING,
                spec={"tuning_job": job.name, "trial": 2},
                hyperparameters={"x": "0.5"},
                created_at=datetime.now(UTC) - timedelta(days=1),
                parent=job.name,
                pid=4242,
                host="a-machine-that-died",
            )
        )
        jobs.heartbeat([ghost], datetime.now(UTC) + timedelta(days=1))
        done = platform.tuning.wait(job.name, timeout_s=180)
        assert done.status is JobStatus.COMPLETED, done.failure_reason
        trials = {t.name: t for t in platform.tuning.summary(job.name).trials}
        assert trials[ghost].state == "Failed"
        reason = trials[ghost].job.failure_reason or ""
        silent = re.search(
            r"on a-machine-that-died \(pid 4242\) has not reported for (\d+) s", reason
        )
        assert silent, reason
        # At least the 3 s it was due, by the coordinator's clock; a loaded machine may check
        # later than that, but far less than the day its stamps are off by.
        assert 3 <= int(silent.group(1)) < 600, reason
        assert [t.state for n, t in trials.items() if n != ghost] == ["Completed"] * 2
    finally:
        # An engine left to the garbage collector with a connection open is a ResourceWarning
        # on Python 3.13, an error here (filterwarnings = error) in whichever test runs next.
        engine.dispose()
        platform.close()


def test_join_refuses_what_it_cannot_do(
    sqlite_platform: Platform, cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    import threading

    platform = sqlite_platform
    job = _script_tuning(platform, cancer, script, max_trials=1)
    done = platform.tuning.wait(job.name, timeout_s=120)
    with pytest.raises(Conflict, match="not InProgress"):
        platform.tuning.join(done.name, threading.Event())
    trial = platform.tuning.summary(job.name).trials[0]
    with pytest.raises(InvalidInput, match="not a tuning job"):
        platform.tuning.join(trial.name, threading.Event())


def test_a_joined_runner_stops_when_the_coordinator_dies(
    cancer: tuple[Path, Path], script: Path, tmp_path: Path
) -> None:
    platform = build(load_settings({}, home=tmp_path / "home", trial_stale_s=3))
    joiner: subprocess.Popen[str] | None = None
    try:
        job = _script_tuning(
            platform, cancer, script, max_trials=6, parallel=1, hyperparameters={"sleep": 120}
        )
        _wait_started(platform, job.name)
        joiner = _join(platform, job.name)
        _wait_running_trials(platform, job.name, 2)
        coordinator = platform.jobs.get(job.name).pid
        assert coordinator is not None
        os.kill(coordinator, signal.SIGKILL)
        # Nobody would register what it trains: its heartbeat sees the coordinator's stand
        # still for 3 s and it stops its trial.
        joiner.communicate(timeout=60)
        assert joiner.returncode == 0
        theirs = [t for t in platform.tuning.summary(job.name).trials if t.job.pid == joiner.pid]
        assert [t.state for t in theirs] == ["Stopped"]
        assert platform.tuning.get(job.name).status is JobStatus.FAILED
    finally:
        if joiner is not None:
            joiner.kill()
            joiner.communicate()
        platform.close()
