"""Tuning benchmark: modelyard's hyperparameter tuning jobs, against the issue's three targets.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

What it does, in a temporary folder (a fresh modelyard home on SQLite, and the data as CSV):

1. The speed study (targets 1 and 2): XGBoost, binary, on ``make_classification`` data
   (20,000 rows x 30 features, 80/20 train/validation), ``--speed-rounds`` rounds (300: about
   2 s of training per trial; 100 gives short trials, where the fixed start-up of a job
   weighs more), a 6-dimensional space,
   random search with a fixed seed (so every run trains the same configurations),
   ``--speed-trials`` trials, run ``--repeats`` times with ``parallel=1`` and ``parallel=2``
   (the order alternates between repeats). Each run is timed from ``submit`` to ``wait``
   returning.

   The reference is the training itself: the benchmark process trains the configurations the
   trials used (read back from the trial jobs) with plain ``xgboost.train`` on the same CSVs,
   read once with pandas: DMatrix construction plus training with train and validation evals,
   ``nthread=1``, like the product. Overhead per trial = (sequential wall - reference sum) /
   trials; it is also given without the fixed start-up (submit to the first trial's start),
   and the wall time is broken down from the trial jobs' timestamps (start-up, time inside
   trial jobs beyond the training, gaps between a runner's trials, finishing, ``wait``
   returning). Target 2 is the median wall with ``parallel=2`` over the one with ``parallel=1``.

2. The search study (target 3): XGBoost on scikit-learn's digits (fixed stratified 70/30
   split, 10 classes), ``validation:mlogloss`` minimised, 60 rounds, a 6-dimensional space,
   ``--search-trials`` trials with ``parallel=2``, for seeds 0..``--seeds``-1 with the
   bayesian (TPE) and random strategies. Per strategy: the best-so-far curve over the trial
   slots, each seed's final best and the median over seeds; the median curves with min-max
   bands are plotted.

Before each run it waits (up to ``--settle`` seconds) for the machine to be quiet, and around
each run it reads the CPU time of modelyard's worker processes (the coordinator is reaped, and
it reaped its runners), of this process and of the whole machine (``/proc/stat``): on a shared
machine ``other_cpu_s`` shows how much of the run competed with someone else's work.

Writes JSON (``--out``) with machine, parameters, every run (walls, trials, their values,
hyperparameters and timestamps), the analysis and the targets; the plots
``tuning_bayes_vs_random.png`` and ``tuning_timeline.png`` beside it; prints tables.

Run (from the repository root)::

    .venv/bin/python benchmarks/tuning.py            # full run, ~8 minutes on 2 cores
    .venv/bin/python benchmarks/tuning.py --quick    # smoke run, ~1-2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from tuning_machine import QUIET_BUSY_FRACTION, CpuMark, machine_info, reap, settle
from tuning_reference import load, reference
from tuning_report import (
    contention,
    overhead,
    plot_search,
    plot_timeline,
    print_report,
    search_summary,
    speedup,
    targets,
)

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import ModelyardError

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_OUT = BENCH_DIR / "results" / "tuning.json"
TARGET = "label"
DATA_SEED = 20_240_601
STOP_TIMEOUT_S = 60.0

# The speed study (targets 1 and 2).
SPEED_ROWS, SPEED_FEATURES, SPEED_ROUNDS, SPEED_SEED = 20_000, 30, 300, 7
SPEED_RANGES = (
    "max_depth=int:3:8", "eta=float:0.01:0.5:log", "min_child_weight=float:0.1:10:log",
    "subsample=float:0.5:1", "colsample_bytree=float:0.4:1", "lambda=float:0.001:10:log",
)  # fmt: skip
# The search study (target 3).
SEARCH_ROUNDS, SEARCH_PARALLEL = 60, 2
SEARCH_RANGES = (
    "max_depth=int:2:10", "eta=float:0.01:0.5:log", "min_child_weight=float:0.1:10:log",
    "subsample=float:0.5:1", "colsample_bytree=float:0.4:1", "lambda=float:0.001:10:log",
)  # fmt: skip
STRATEGIES = ("bayesian", "random")


@dataclass(frozen=True)
class Task:
    """One tuning problem: its CSVs, objective, search space and rounds."""

    study: str
    model: str
    train: Path
    validation: Path
    objective: str
    ranges: tuple[str, ...]
    num_round: int
    description: str


def _write_csv(path: Path, features: np.ndarray, labels: np.ndarray) -> Path:
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
    frame[TARGET] = labels
    frame.to_csv(path, index=False)
    return path


def make_tasks(folder: Path, speed_rounds: int = SPEED_ROUNDS) -> dict[str, Task]:
    """Write both studies' data; their tasks."""
    x, y = make_classification(
        n_samples=SPEED_ROWS, n_features=SPEED_FEATURES, n_informative=12, n_redundant=6,
        random_state=DATA_SEED,
    )  # fmt: skip
    cut = SPEED_ROWS * 4 // 5
    speed = Task(
        "speed", "bench-speed",
        _write_csv(folder / "speed-train.csv", x[:cut], y[:cut]),
        _write_csv(folder / "speed-validation.csv", x[cut:], y[cut:]),
        "validation:logloss", SPEED_RANGES, speed_rounds,
        f"make_classification({SPEED_ROWS} x {SPEED_FEATURES}, random_state={DATA_SEED}), "
        f"first {cut} rows train, the rest validation; binary",
    )  # fmt: skip
    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=0
    )
    search = Task(
        "search", "bench-digits",
        _write_csv(folder / "digits-train.csv", x_train, y_train),
        _write_csv(folder / "digits-validation.csv", x_valid, y_valid),
        "validation:mlogloss", SEARCH_RANGES, SEARCH_ROUNDS,
        f"sklearn load_digits ({len(x)} x {x.shape[1]}, 10 classes), "
        "train_test_split(test_size=0.3, stratify=y, random_state=0)",
    )  # fmt: skip
    return {"speed": speed, "search": search}


# --------------------------------------------------------------------------------------------
# Running studies through modelyard


def _offset(moment: datetime | None, origin: datetime) -> float | None:
    return None if moment is None else (moment - origin).total_seconds()


def run_study(
    modelyard: Platform,
    task: Task,
    *,
    strategy: str,
    trials: int,
    parallel: int,
    seed: int,
    settle_s: float,
) -> dict[str, Any]:
    """Submit a tuning job, wait for it, and record it (times in seconds from submit)."""
    quiet = settle(settle_s)
    mark = CpuMark.now()
    submitted, start = datetime.now(UTC), time.perf_counter()
    job = modelyard.tuning.submit(
        task.model, train=str(task.train), validation=str(task.validation), target=TARGET,
        algorithm="xgboost", objective=task.objective, maximize=False, ranges=list(task.ranges),
        hyperparameters={"num_round": task.num_round}, strategy=strategy,
        max_trials=trials, parallel=parallel, seed=seed,
    )  # fmt: skip
    try:
        done = modelyard.tuning.wait(job.name)
    except BaseException:  # interrupted: stop the detached workers before leaving
        with contextlib.suppress(ModelyardError):
            modelyard.tuning.stop(job.name)
            modelyard.tuning.wait(job.name, timeout_s=STOP_TIMEOUT_S)
        raise
    wall = time.perf_counter() - start
    reap(job.pid)
    cpu = CpuMark.now().since(mark)
    summary = modelyard.tuning.summary(job.name)
    return {
        "study": task.study,
        "job": job.name,
        "strategy": strategy,
        "seed": seed,
        "parallel": parallel,
        "max_trials": trials,
        "status": done.status.value,
        "failure_reason": done.failure_reason,
        "wall_s": wall,
        "machine_before": quiet,
        "cpu": cpu,
        "coordinator_start_s": _offset(done.started_at, submitted),
        "job_end_s": _offset(done.ended_at, submitted),
        "best": summary.best.value if summary.best else None,
        "trials": [
            {
                "slot": slot,
                "job": trial.name,
                "state": trial.state,
                "value": trial.value,
                "runner_pid": trial.job.pid,
                "start_s": _offset(trial.job.started_at, submitted),
                "end_s": _offset(trial.job.ended_at, submitted),
                "hyperparameters": dict(trial.job.hyperparameters),
            }
            for slot, trial in enumerate(summary.trials)
        ],
    }


# --------------------------------------------------------------------------------------------
# The benchmark


def run_all(args: argparse.Namespace, tasks: dict[str, Task], home: Path, out: dict) -> None:
    """Every study run, into ``out`` (kept as far as it got when interrupted)."""
    speed, search = tasks["speed"], tasks["search"]
    speed_plan = [(r, p) for r in range(args.repeats) for p in ((1, 2) if r % 2 == 0 else (2, 1))]
    search_plan = [(seed, s) for seed in range(args.seeds) for s in STRATEGIES]
    modelyard = build(load_settings({}, home=home))
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total}"), TimeElapsedColumn())  # fmt: skip
    try:
        with Progress(*columns, console=Console(stderr=True)) as progress:
            bar = progress.add_task("studies", total=len(speed_plan) + len(search_plan))

            def record(run: dict[str, Any], into: list[dict[str, Any]]) -> None:
                into.append(run)
                progress.console.print(
                    f"{run['study']} {run['strategy']} seed={run['seed']} "
                    f"parallel={run['parallel']}: {run['status']} in {run['wall_s']:.1f} s, "
                    f"best {run['best']}"
                )
                progress.advance(bar)

            for repeat, parallel in speed_plan:
                progress.update(bar, description=f"speed r{repeat} parallel={parallel}")
                run = run_study(
                    modelyard, speed, strategy="random", trials=args.speed_trials,
                    parallel=parallel, seed=SPEED_SEED, settle_s=args.settle,
                )  # fmt: skip
                record({**run, "repeat": repeat}, out["speed_runs"])
            for seed, strategy in search_plan:
                progress.update(bar, description=f"search {strategy} seed={seed}")
                run = run_study(
                    modelyard, search, strategy=strategy, trials=args.search_trials,
                    parallel=SEARCH_PARALLEL, seed=seed, settle_s=args.settle,
                )  # fmt: skip
                record(run, out["search_runs"])
    finally:
        modelyard.close()


def parameters(args: argparse.Namespace, tasks: dict[str, Task]) -> dict[str, Any]:
    def describe(task: Task) -> dict[str, Any]:
        return {
            "data": task.description,
            "objective": task.objective,
            "direction": "minimize",
            "ranges": list(task.ranges),
            "fixed_hyperparameters": {"num_round": task.num_round},
            "algorithm": "xgboost (modelyard built-in, nthread=1 per trial)",
        }

    return {
        "quick": args.quick,
        "database": "SQLite (fresh modelyard home in a temporary folder)",
        "speed": {
            **describe(tasks["speed"]), "strategy": "random", "seed": SPEED_SEED,
            "trials": args.speed_trials, "parallel": [1, 2], "repeats": args.repeats,
            "reference_passes": args.reference_passes,
        },
        "search": {
            **describe(tasks["search"]), "strategies": list(STRATEGIES), "seeds":
            list(range(args.seeds)), "trials": args.search_trials, "parallel": SEARCH_PARALLEL,
            "note": "with parallel=2 TPE's proposals depend on which trials have finished, so "
            "a bayesian run is not exactly reproducible",
        },
        "wall_time": "time.perf_counter() around submit() + wait(); wait() polls every 0.5 s "
        "and reaps the coordinator it started",
        "settle": f"up to {args.settle} s before each run for machine busy <= "
        f"{QUIET_BUSY_FRACTION:.0%} of all cores",
    }  # fmt: skip


def analyse(args: argparse.Namespace, tasks: dict[str, Task], out: dict) -> dict[str, Any]:
    """Reference training, overhead, speed-up and search curves from the recorded runs."""
    sequential = [r for r in out["speed_runs"] if r["parallel"] == 1 and r["status"] == "Completed"]
    speed = tasks["speed"]
    ref = None
    if sequential:
        data = load(speed.train, speed.validation, TARGET)
        quiet, mark = settle(args.settle), CpuMark.now()
        ref = reference(data, speed.objective, sequential[0], args.reference_passes)
        ref.update(machine_before=quiet, cpu=CpuMark.now().since(mark))
    configs = {tuple(sorted(t["hyperparameters"].items())) for r in out["speed_runs"]
               for t in r["trials"]}  # fmt: skip
    overheads = overhead(out["speed_runs"], ref) if ref else {
        "total_per_trial_s": None, "excluding_startup_per_trial_s": None, "runs": [],
    }  # fmt: skip
    scaling = speedup(out["speed_runs"])
    contended = contention(out["speed_runs"])
    search = search_summary(out["search_runs"], args.search_trials)
    return {
        "speed": {
            "runs": out["speed_runs"],
            "same_configurations_in_every_run": len(configs) == args.speed_trials,
            "reference": ref,
            "overhead": overheads,
            "parallel": scaling,
            "contention": contended,
        },
        "search": {"runs": out["search_runs"], **search},
        "targets": targets(overheads, scaling, search, contended["contended_runs"]),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed-trials", type=int, default=16, help="trials per speed run")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs per parallelism")
    parser.add_argument(
        "--speed-rounds", type=int, default=SPEED_ROUNDS, help="boosting rounds per speed trial"
    )
    parser.add_argument("--reference-passes", type=int, default=3, help="reference repetitions")
    parser.add_argument("--search-trials", type=int, default=30, help="trials per search run")
    parser.add_argument("--seeds", type=int, default=5, help="search seeds (0..N-1)")
    parser.add_argument(
        "--settle", type=float, default=30.0, help="most seconds to wait for a quiet machine"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 6 speed trials once, 8 search trials x 2"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.speed_trials, args.repeats, args.reference_passes = 6, 1, 1
        args.search_trials, args.seeds, args.settle = 8, 2, 3.0
    if min(args.speed_trials, args.repeats, args.reference_passes, args.search_trials) < 1:
        parser.error("trials, repeats and passes must be positive")
    if args.seeds < 1:
        parser.error("--seeds must be positive")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets met or not), 130 when interrupted."""
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    started, machine = datetime.now(UTC), machine_info(REPO_ROOT)
    out: dict[str, Any] = {"speed_runs": [], "search_runs": []}
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="modelyard-tuning-bench-") as tmp:
        tasks = make_tasks(Path(tmp), args.speed_rounds)
        try:
            run_all(args, tasks, Path(tmp) / "home", out)
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: writing what was measured", file=sys.stderr)
        report = {
            "benchmark": "tuning",
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "interrupted": interrupted,
            "machine": {**machine, "load_average_at_end": os.getloadavg()},
            "parameters": parameters(args, tasks),
            **analyse(args, tasks, out),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    plots = args.out.parent
    if report["search"]["strategies"]:
        plot_search(
            report["search"], tasks["search"].objective, plots / "tuning_bayes_vs_random.png"
        )
    if out["speed_runs"]:
        ref = report["speed"]["reference"] or {"per_trial_s": []}
        plot_timeline(out["speed_runs"], ref["per_trial_s"], plots / "tuning_timeline.png")
    print_report(Console(width=max(shutil.get_terminal_size((140, 24)).columns, 120)), report)
    print(f"wrote {args.out} and plots in {plots}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
