"""Batch benchmark: ``modelyard batch`` against a hand-written pandas script and ``mlflow models
predict``, on a headerless CSV, in one run.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

What it does, in a temporary work folder:

1. Trains the serving benchmark's model (``serving.build_assets``: XGBoost, 100 trees, depth
   6, 30 features) and registers it as ``bench`` in a fresh MODELYARD_HOME.
2. Writes a ``--rows`` (1,000,000) headerless CSV, and a ``--big-rows`` (10,000,000) one for
   the memory-flatness check (``--no-big`` skips it), streamed to disk (``batch_data.py``).
3. Runs, each as a command whose whole process tree is measured (``batch_measure.py``: wall
   time; peak RSS summed over the tree, sampled every 50 ms; PSS; each process's own peak):
   - **the reference** (``batch_reference.py``): ``pd.read_csv`` -> ``inplace_predict`` ->
     ``to_csv``, ``--repeats`` times, alternating with
   - **modelyard batch** ``bench --input … --output …`` (the CLI, its job worker and that
     worker's processes), ``--repeats`` times; then once on the big file;
   - **resume**: a modelyard run SIGKILLed (CLI and the job's worker session) once half its
     output bytes are written, then ``modelyard jobs resume JOB``; total against one
     uninterrupted run, and the final output against the uninterrupted one, byte for byte;
   - **Ray**: the same job through the engine with the Ray executor on a local Ray started by
     the job (``batch_engine_run.py``), and through the engine with the local executor, for
     the overhead; outputs compared byte for byte;
   - **mlflow models predict** in a side virtualenv (``batch_mlflow.py``): the headerless CSV,
     the CSV with a header, and the ``dataframe_split`` JSON it accepts.
4. Checks modelyard's predictions against the reference's, row for row, as float32.
5. Writes JSON (``--out``) with the machine and its load, the parameters, every run, the
   targets and whether they are met; a figure (``--plot``); and prints a table.

Run (from the repository root)::

    .venv/bin/python benchmarks/batch.py                    # everything, ~10 minutes
    .venv/bin/python benchmarks/batch.py --quick            # 100k / 1M rows, one repeat
    .venv/bin/python benchmarks/batch.py --no-big --skip mlflow,ray
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import batch_data
import batch_mlflow
import batch_modelyard
import batch_report
import orjson
import serving
from batch_measure import run_measured
from machine import machine_info
from serverproc import machine_cpu_seconds
from tuning_machine import settle

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "batch.json"
DEFAULT_PLOT = BENCH_DIR / "results" / "batch.png"
REFERENCE = BENCH_DIR / "batch_reference.py"
SEED = 20_240_611
PACKAGES = ("xgboost", "pandas", "numpy", "pyarrow", "ray", "scikit-learn")
PARTS = ("reference", "modelyard", "big", "resume", "ray", "mlflow", "precision")


def _machine_load() -> dict[str, Any]:
    busy, total = machine_cpu_seconds()
    return {"loadavg": os.getloadavg(), "busy_s": busy, "total_s": total}


def _load_during(before: dict[str, Any]) -> dict[str, Any]:
    """The machine's CPU use between ``before`` and now (all processes, all cores)."""
    after = _machine_load()
    span = after["total_s"] - before["total_s"]
    return {
        "loadavg_before": before["loadavg"],
        "machine_busy_fraction": (after["busy_s"] - before["busy_s"]) / span if span else None,
    }


def run_reference(
    model: Path, csv: Path, out: Path, rows: int, timeout_s: float, settle_s: float
) -> dict:
    """The pandas script, measured (after waiting up to ``settle_s`` for a quiet machine)."""
    quiet = settle(settle_s)
    before = _machine_load()
    measured = run_measured(
        [sys.executable, str(REFERENCE), str(model), str(csv), str(out)],
        timeout_s=timeout_s,
        log_path=out.with_suffix(".log"),
    )
    result = measured.as_dict()
    ok = measured.returncode == 0
    result.update(ok=ok, rows=rows, rows_per_s=rows / measured.wall_s if ok else None)
    if ok:
        result["script"] = orjson.loads(measured.stdout_tail.strip().splitlines()[-1])
    result["machine_load"] = {"settle": quiet, **_load_during(before)}
    return result


def _with_load(settle_s: float, call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``call(*args, **kwargs)`` after waiting up to ``settle_s`` for a quiet machine, with
    how busy the machine was before and during it."""
    quiet = settle(settle_s)
    before = _machine_load()
    result = dict(call(*args, **kwargs))
    result["machine_load"] = {"settle": quiet, **_load_during(before)}
    return result


class Bench:
    """One benchmark run: the work folder, the model, the inputs, and what was measured."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.parts = set(PARTS) - set(args.skip) - ({"big"} if args.no_big else set())
        self.report: dict[str, Any] = {"runs": {}, "errors": {}}
        self.runs: dict[str, Any] = self.report["runs"]
        print("training the model (serving.build_assets) ...", flush=True)
        self.assets = serving.build_assets(work)
        self.csv = work / "input" / "rows.csv"
        self.csv.parent.mkdir()
        print(f"writing {args.rows:,} rows ...", flush=True)
        self.report["input"] = batch_data.write_csv(self.csv, args.rows, serving.N_FEATURES, SEED)
        self.home = work / "modelyard-home"
        self.report["registered"] = batch_modelyard.register(
            self.home, self.assets.model_path, batch_data.feature_names(serving.N_FEATURES)
        )
        self.out_name = f"{self.csv.name}.out"

    def measured(self, call: Any, *args: Any) -> dict[str, Any]:
        """``call(*args)`` after waiting for a quiet machine, with the machine's load."""
        return _with_load(self.args.settle, call, *args)

    def modelyard(self, input_path: Path, output: str, rows: int, log: str) -> dict[str, Any]:
        a = self.args
        return self.measured(
            batch_modelyard.run_batch, self.home, input_path, self.work / output, rows,
            a.workers, a.timeout * max(1, rows // a.rows), self.work / log,
        )  # fmt: skip

    def core(self) -> None:
        """The reference and modelyard, alternating, ``--repeats`` times each."""
        a, ref_runs, my_runs = self.args, [], []
        for i in range(a.repeats):
            if "reference" in self.parts:
                print(f"reference, run {i + 1} ...", flush=True)
                ref_runs.append(run_reference(
                    self.assets.model_path, self.csv, self.work / "reference.csv", a.rows,
                    a.timeout, a.settle,
                ))  # fmt: skip
            if "modelyard" in self.parts:
                print(f"modelyard batch, run {i + 1} ...", flush=True)
                my_runs.append(self.modelyard(self.csv, "out-local", a.rows, f"my-{i}.log"))
        self.runs["reference"], self.runs["modelyard"] = ref_runs, my_runs

    @property
    def local_ok(self) -> bool:
        return bool(self.runs.get("modelyard")) and self.runs["modelyard"][-1]["ok"]

    def resume(self) -> None:
        print("modelyard batch killed at ~50% and resumed ...", flush=True)
        a = self.args
        full_bytes = (self.work / "out-local" / self.out_name).stat().st_size
        run = self.runs["resume"] = self.measured(
            batch_modelyard.run_killed_and_resumed, self.home, self.csv,
            self.work / "out-resume", a.rows, a.workers, full_bytes, a.timeout,
            self.work / "resume.log",
        )  # fmt: skip
        if run.get("ok"):
            run["same_bytes_as_uninterrupted"] = batch_report.same_bytes(
                self.work / "out-local", self.work / "out-resume"
            )

    def ray(self) -> None:
        """The engine with the local executor, then with the Ray executor; outputs compared."""
        a, work = self.args, self.work
        for executor in ("local", "ray"):
            print(f"engine with the {executor} executor ...", flush=True)
            self.runs[f"engine_{executor}"] = self.measured(
                batch_modelyard.run_engine, self.home, self.csv, work / f"out-engine-{executor}",
                a.rows, a.workers, executor, a.timeout, work / f"engine-{executor}.log",
                a.ray_address if executor == "ray" else None,
            )  # fmt: skip
        if self.runs["engine_local"]["ok"] and self.runs["engine_ray"]["ok"]:
            self.runs["ray_vs_local"] = batch_report.same_bytes(
                work / "out-engine-local", work / "out-engine-ray"
            )
            if self.local_ok:
                self.runs["engine_local_vs_cli"] = batch_report.same_bytes(
                    work / "out-local", work / "out-engine-local"
                )

    def mlflow(self) -> None:
        print("mlflow models predict ...", flush=True)
        a = self.args
        try:
            venv = batch_mlflow.ensure_venv(a.mlflow_venv)
            self.runs["mlflow"] = {"venv": venv, **self.measured(
                batch_mlflow.run, a.mlflow_venv, self.assets.model_path, self.csv, a.rows,
                self.work, a.timeout,
            )}  # fmt: skip
        except (batch_mlflow.SetupFailed, OSError) as exc:
            self.report["errors"]["mlflow"] = str(exc)

    def agreement(self) -> None:
        """modelyard's and MLflow's predictions against the reference's, row for row."""
        ref_runs = self.runs.get("reference", [])
        if not (ref_runs and ref_runs[-1]["ok"]):
            return
        reference = batch_data.read_predictions(self.work / "reference.csv")
        if self.local_ok:
            mine = batch_data.read_predictions(self.work / "out-local" / self.out_name)
            self.report["agreement_with_reference"] = batch_report.compare(mine, reference)
        path = self.runs.get("mlflow", {}).get("predictions_path")
        if path:
            theirs = batch_mlflow.read_predictions(Path(path))
            self.report["mlflow_agreement_with_reference"] = batch_report.compare(theirs, reference)

    def big(self) -> None:
        """modelyard on ``--big-rows`` rows (the file is written, used and deleted here)."""
        a = self.args
        big = self.work / "input-big" / "rows.csv"
        big.parent.mkdir()
        print(f"writing {a.big_rows:,} rows ...", flush=True)
        self.report["big_input"] = batch_data.write_csv(big, a.big_rows, serving.N_FEATURES, SEED)
        print("modelyard batch on the big file ...", flush=True)
        self.runs["modelyard_big"] = self.modelyard(big, "out-big", a.big_rows, "my-big.log")
        if "resume" in self.parts and self.runs["modelyard_big"]["ok"]:
            # The same kill-and-resume on the big file: what the restart costs where the work
            # is not dwarfed by it (the 1M-row target above stays the one reported as such).
            print("modelyard batch on the big file, killed at ~50% and resumed ...", flush=True)
            self.runs["resume_big"] = self.measured(
                batch_modelyard.run_killed_and_resumed, self.home, big,
                self.work / "out-resume-big", a.big_rows, a.workers,
                (self.work / "out-big" / self.out_name).stat().st_size,
                a.timeout * max(1, a.big_rows // a.rows), self.work / "resume-big.log",
            )  # fmt: skip
            if self.runs["resume_big"].get("ok"):
                self.runs["resume_big"]["same_bytes_as_uninterrupted"] = batch_report.same_bytes(
                    self.work / "out-big", self.work / "out-resume-big"
                )
            shutil.rmtree(self.work / "out-resume-big", ignore_errors=True)
        shutil.rmtree(big.parent, ignore_errors=True)
        shutil.rmtree(self.work / "out-big", ignore_errors=True)

    def run(self) -> dict[str, Any]:
        """Every part not skipped; the report without summary and targets."""
        self.core()
        if "resume" in self.parts and self.local_ok:
            self.resume()
        if "ray" in self.parts:
            self.ray()
        if "mlflow" in self.parts:
            self.mlflow()
        self.agreement()
        if "precision" in self.parts:
            print("float32 casts: exact and lossy values ...", flush=True)
            self.report["precision_probe"] = batch_modelyard.precision_probe(
                self.home, self.work, serving.N_FEATURES
            )
        if "big" in self.parts:
            self.big()
        return self.report


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "rows": args.rows,
        "big_rows": None if args.no_big else args.big_rows,
        "repeats": args.repeats,
        "workers": args.workers or "modelyard's default (one per core)",
        "skip": sorted(args.skip),
        "model": {
            "kind": "xgboost binary:logistic (benchmarks/serving.py build_assets)",
            "trees": serving.N_TREES,
            "max_depth": serving.MAX_DEPTH,
            "features": serving.N_FEATURES,
        },
        "input": "headerless CSV, float32 values with <= 4 decimals, N(0, 2), "
        f"seed {SEED} (benchmarks/batch_data.py)",
        "memory": "peak over 50 ms samples of the summed RSS of the command's whole process "
        "tree (the CLI, the job's worker in its own session, its worker processes; Ray's "
        "processes); PSS likewise; sum_of_process_peaks_mib bounds it from above",
        "reference": "benchmarks/batch_reference.py: pandas read_csv -> Booster.inplace_predict "
        "(all cores) -> to_csv",
        "tolerance": batch_report.MAX_ULPS,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--no-big", action="store_true", help="skip the big-file run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="per command, seconds")
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="seconds to wait at most for a quiet machine before each run",
    )
    parser.add_argument(
        "--skip",
        type=lambda t: [p for p in t.split(",") if p],
        default=[],
        help=f"comma-separated parts to skip: {', '.join(PARTS)}",
    )
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: local)")
    parser.add_argument("--mlflow-venv", type=Path, default=batch_mlflow.DEFAULT_VENV)
    parser.add_argument("--quick", action="store_true", help="100k / 1M rows, one repeat")
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    args = parser.parse_args(argv)
    unknown = set(args.skip) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) to skip: {', '.join(sorted(unknown))}")
    if args.quick:
        args.rows, args.big_rows, args.repeats = 100_000, 1_000_000, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    machine = machine_info(*PACKAGES)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelyard-batch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    try:
        report = Bench(args, work).run()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "benchmark": "batch",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "parameters": parameters(args),
        **report,
    }
    report["summary"] = batch_report.summarise(report)
    report["targets"] = batch_report.targets(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    tmp.replace(args.out)
    batch_report.plot(report, args.plot)
    batch_report.print_table(report)
    print(f"\nwrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
