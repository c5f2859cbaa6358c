"""Drift benchmark: modelyard's sketches and drift tests against Evidently's data drift preset,
on the same data in the same run.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

The data (benchmarks/drift_data.py): ``--rows`` rows (1,000,000) x 30 numeric features of varied
shapes, seeded; a baseline, and a current window of the same size, independent draws, where
five features are shifted (f00: mean +0.1 sd, f01: mean -0.1 sd on a skewed feature, f02: sd
x1.3, f03: 10 % of rows from a component 2 sd higher, f04: an integer count whose rate rises
10 %) and 25 are not. Both are written to Parquet files in a temporary folder, so that reading
is timed apart from the work.

modelyard, in this process (after a warm-up on 1,000 rows, so that imports are not timed):

- it first waits (up to ``--settle`` seconds) for the machine to be quiet (other work may share
  the 2 cores), and records how busy it was;
- the baseline sketch (``Profile.from_frame`` of the 1M-row baseline), timed on its own;
- the step the issue's target is about: sketching the current window from memory
  (``Profile.from_frame``) plus every default test against the baseline's profile
  (``monitoring.drift.compare`` with the default ``DriftConfig``), ``--repeats`` times: the
  median wall time is the result (each repeat also records the machine's busy share while it
  ran, since other work may share the 2 cores);
- the memory of that step, measured twice: the peak resident set during it minus the resident
  set at its start (the kernel's high-water mark, reset just before; native NumPy/Arrow memory
  included), and ``tracemalloc``'s peak (allocations traced by Python, NumPy's included) in
  another repeat;
- reading the current window's Parquet file with pandas (page cache warm), apart;
- the serialized size of a sketch per feature at 10^2..10^6 rows (the memory bound).

Then the same step in a fresh modelyard process (benchmarks/drift_modelyard.py: read the
Parquet file, load the baseline profile's bytes, sketch and test), which reports
``getrusage``'s peak resident set of that whole process.

Evidently (benchmarks/drift_evidently*.py), in its own virtualenv (it needs pandas < 3), made
on first use under ``benchmarks/.venvs/evidently``: a worker process reads the same two Parquet
files and runs ``Report([DataDriftPreset()], include_tests=True).run(current, reference)``,
reporting the same two memory figures and which columns its tests flag.

Writes ``benchmarks/results/drift.json`` (both tools' times, memory, the speed and memory
ratios, both verdicts against the known shifts, the sketch sizes, the machine) and
``drift.png`` (drawn by benchmarks/drift_report.py), and prints a summary.

Run (from the repository root)::

    .venv/bin/python benchmarks/drift.py                  # 1M rows; Evidently takes minutes
    .venv/bin/python benchmarks/drift.py --rows 20000     # smoke run, well under a minute
    .venv/bin/python benchmarks/drift.py --skip-evidently
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import drift_data
import drift_evidently
import drift_modelyard
import drift_report
import orjson
import pandas as pd
import procmem
from machine import machine_info
from serverproc import machine_cpu_seconds
from tuning_machine import settle

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "drift.json"
SEED = 20_250_101
TARGET_STEP_S = 2.0
TARGET_STEP_MIB = 500.0
SKETCH_SIZES = (100, 10_000, 100_000, 1_000_000)
EVIDENTLY_TIMEOUT_S = 3600.0


# --------------------------------------------------------------------------------------------
# Timing helpers


def _timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn``; its result, wall and CPU seconds, and the machine's busy share meanwhile
    (of all cores: 1.0 means every core was busy, this process or another)."""
    busy0, total0 = machine_cpu_seconds()
    cpu0, start = time.process_time(), time.perf_counter()
    result = fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    busy1, total1 = machine_cpu_seconds()
    return result, {
        "wall_s": wall,
        "cpu_s": cpu,
        "machine_busy_fraction": (busy1 - busy0) / max(total1 - total0, 1e-9),
    }


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


# --------------------------------------------------------------------------------------------
# modelyard, in this process


def _step(baseline: Any, current: pd.DataFrame) -> tuple[Any, Any, dict[str, float]]:
    """The measured step: sketch ``current`` and run every default test against ``baseline``;
    the profile, the report and the split of the time."""
    profile, sketch = _timed(lambda: drift_modelyard.sketch(current))
    report, tests = _timed(lambda: drift_modelyard.compare(baseline, profile))
    return profile, report, {"sketch_s": sketch["wall_s"], "tests_s": tests["wall_s"]}


def _step_memory(baseline: Any, current: pd.DataFrame) -> dict[str, Any]:
    """Peak resident set during one step minus the resident set at its start (after handing
    the memory earlier repeats freed back to the kernel)."""
    gc.collect()
    procmem.trim()
    before = procmem.rss_mib()
    if not procmem.reset_peak():
        return {"step_delta_mib": None, "note": "/proc/self/clear_refs refused"}
    _step(baseline, current)
    peak = procmem.peak_mib()
    return {
        "rss_before_step_mib": before,
        "step_peak_rss_mib": peak,
        "step_delta_mib": peak - before,
    }


def _step_tracemalloc(baseline: Any, current: pd.DataFrame) -> float:
    """tracemalloc's peak during one step, MiB (what Python and NumPy allocated and held)."""
    gc.collect()
    tracemalloc.start()
    try:
        _step(baseline, current)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / procmem.MIB


def measure_modelyard(
    baseline: pd.DataFrame, current: pd.DataFrame, current_path: Path, repeats: int
) -> tuple[dict[str, Any], Any, Any]:
    """Everything timed in this process; also the baseline profile and the last report."""
    warm = drift_modelyard.sketch(baseline.iloc[:1000])
    drift_modelyard.compare(warm, drift_modelyard.sketch(current.iloc[:1000]))

    baseline_profile, baseline_timing = _timed(lambda: drift_modelyard.sketch(baseline))
    print(f"modelyard: baseline sketched in {baseline_timing['wall_s']:.2f} s", flush=True)

    steps, payloads, report = [], set(), None
    for repeat in range(repeats):
        (profile, report, split), timing = _timed(lambda: _step(baseline_profile, current))
        steps.append({**timing, **split})
        payloads.add(drift_modelyard.to_bytes(profile))
        print(
            f"modelyard: step {repeat + 1}/{repeats}: {timing['wall_s']:.2f} s "
            f"(sketch {split['sketch_s']:.2f} + tests {split['tests_s']:.2f}; machine busy "
            f"{timing['machine_busy_fraction']:.0%})",
            flush=True,
        )
    memory = _step_memory(baseline_profile, current)
    memory["tracemalloc_peak_mib"] = _step_tracemalloc(baseline_profile, current)
    print(
        f"modelyard: step memory {memory['step_delta_mib']:.0f} MiB (RSS delta), "
        f"{memory['tracemalloc_peak_mib']:.0f} MiB (tracemalloc)",
        flush=True,
    )

    reads = []
    for _ in range(3):
        _, timing = _timed(lambda: pd.read_parquet(current_path, engine="pyarrow"))
        reads.append(timing["wall_s"])

    sizes = {}
    for rows in SKETCH_SIZES:
        if rows <= len(current):
            sized = drift_modelyard.sketch(current.iloc[:rows])
            sizes[str(rows)] = drift_modelyard.size_report(sized)
    assert report is not None
    record = {
        "baseline_sketch": baseline_timing,
        "baseline_profile_bytes": len(drift_modelyard.to_bytes(baseline_profile)),
        "step": {
            "what": "Profile.from_frame(current, in memory) + compare(baseline_profile, "
            "current_profile, DriftConfig()): every default test",
            "wall_s": _summary([s["wall_s"] for s in steps]),
            "sketch_s": _summary([s["sketch_s"] for s in steps]),
            "tests_s": _summary([s["tests_s"] for s in steps]),
            "repeats": steps,
            "same_bytes_every_repeat": len(payloads) == 1,
        },
        "memory": memory,
        "read_current_parquet_s": _summary(reads),
        "sketch_size_by_rows": sizes,
    }
    return record, baseline_profile, report


# --------------------------------------------------------------------------------------------
# Verdicts, ratios, targets


def _verdict(flagged: set[str]) -> dict[str, Any]:
    """How a tool's flagged features compare with the known shifts."""
    missed = sorted(set(drift_data.SHIFTED) - flagged)
    false = sorted(flagged - set(drift_data.SHIFTED))
    return {
        "flagged": sorted(flagged),
        "shifted_found": sorted(flagged & set(drift_data.SHIFTED)),
        "shifted_missed": missed,
        "unshifted_flagged": false,
        "every_shifted_found": not missed,
        "no_unshifted_flagged": not false,
        "correct": not missed and not false,
    }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def analyse(modelyard: dict[str, Any], fresh: dict[str, Any], evidently: dict[str, Any]) -> dict:
    """Ratios (Evidently over modelyard: above 1, modelyard is faster or smaller) and targets.

    Memory ratios compare like with like: each tool's step measured on its first run in a
    fresh process (RSS delta), and each fresh process's whole peak."""
    step_s = modelyard["step"]["wall_s"]["median"]
    fresh_mem = fresh.get("memory", {})
    ev_ok = "error" not in evidently and "run_s" in evidently
    ev_run = evidently.get("run_s") if ev_ok else None
    ev_mem = evidently.get("memory", {}) if ev_ok else {}
    measured_mib = {
        "fresh_process_rss_delta": fresh_mem.get("step_delta_mib"),
        "in_process_rss_delta": modelyard["memory"]["step_delta_mib"],
        "tracemalloc_peak": modelyard["memory"]["tracemalloc_peak_mib"],
    }
    known = [v for v in measured_mib.values() if v is not None]
    return {
        "speed_ratio_evidently_over_modelyard_step": _ratio(ev_run, step_s),
        "speed_ratio_evidently_over_modelyard_fresh_process_step": _ratio(
            ev_run, fresh.get("step_s")
        ),
        "speed_ratio_evidently_over_modelyard_baseline_plus_step": _ratio(
            ev_run, modelyard["baseline_sketch"]["wall_s"] + step_s
        ),
        "memory_ratio_step_delta": _ratio(
            ev_mem.get("step_delta_mib"), fresh_mem.get("step_delta_mib")
        ),
        "memory_ratio_process_peak": _ratio(
            ev_mem.get("process_peak_vmhwm_mib"), fresh_mem.get("process_peak_vmhwm_mib")
        ),
        "memory_ratio_process_peak_getrusage": _ratio(
            ev_mem.get("process_peak_mib"), fresh_mem.get("process_peak_mib")
        ),
        "targets": {
            "step_s": {
                "target": TARGET_STEP_S,
                "measured_median": step_s,
                "measured_fresh_process": fresh.get("step_s"),
                "met": step_s <= TARGET_STEP_S,
            },
            "step_mib": {
                "target": TARGET_STEP_MIB,
                "measured": measured_mib,
                "met": len(known) == len(measured_mib) and max(known) <= TARGET_STEP_MIB,
            },
        },
    }


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each dataset")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--repeats", type=int, default=5, help="timed modelyard steps")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently-venv", type=Path, default=drift_evidently.DEFAULT_VENV)
    parser.add_argument(
        "--evidently-timeout", type=float, default=EVIDENTLY_TIMEOUT_S, help="seconds"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=120.0,
        help="seconds to wait at most for a quiet machine before modelyard's timings",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report")
    parser.add_argument("--png", type=Path, help="figure (default: the JSON path as .png)")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.repeats < 1:
        parser.error("--rows must be >= 1000 and --repeats >= 1")
    args.png = args.png or args.out.with_suffix(".png")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    machine = machine_info("modelyard", "numpy", "pandas", "pyarrow", "scipy")
    with tempfile.TemporaryDirectory(prefix="modelyard-drift-") as tmp:
        folder = Path(tmp)
        print(f"data: {args.rows:,} rows x {drift_data.N_FEATURES} features, twice", flush=True)
        baseline = drift_data.frame(args.rows, args.seed, drift_data.BASELINE, shifted=False)
        current = drift_data.frame(args.rows, args.seed, drift_data.CURRENT, shifted=True)
        paths = {"baseline": folder / "baseline.parquet", "current": folder / "current.parquet"}
        file_bytes = {
            "baseline": drift_data.write_parquet(baseline, paths["baseline"]),
            "current": drift_data.write_parquet(current, paths["current"]),
        }

        quiet = settle(args.settle)
        print(f"machine: {quiet}", flush=True)
        modelyard, baseline_profile, my_report = measure_modelyard(
            baseline, current, paths["current"], args.repeats
        )
        modelyard["machine_before"] = quiet
        modelyard["config"] = drift_modelyard.config_dict()
        modelyard["features"] = drift_modelyard.feature_results(my_report)
        modelyard["dataset"] = drift_modelyard.dataset_result(my_report)
        del baseline, current
        gc.collect()

        profile_path = folder / "baseline.profile"
        profile_path.write_bytes(drift_modelyard.to_bytes(baseline_profile))
        print("modelyard: the same step in a fresh process", flush=True)
        fresh = drift_modelyard.run_fresh(profile_path, paths["current"])

        evidently: dict[str, Any] = {"skipped": True}
        if not args.skip_evidently:
            try:
                venv = drift_evidently.ensure_venv(args.evidently_venv)
            except drift_evidently.EvidentlySetupFailed as exc:
                evidently = {"error": str(exc)}
            else:
                print(f"Evidently: running (timeout {args.evidently_timeout:.0f} s)", flush=True)
                evidently = {
                    "venv": venv,
                    **drift_evidently.run_worker(
                        Path(venv["python"]),
                        paths["baseline"],
                        paths["current"],
                        args.evidently_timeout,
                    ),
                }

    verdicts = {
        "modelyard": _verdict({name for name, f in modelyard["features"].items() if f["flagged"]})
    }
    if "columns" in evidently:
        verdicts["evidently"] = _verdict(
            {name for name, c in evidently["columns"].items() if c["drift"]}
        )
    report = {
        "benchmark": "drift",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "parameters": {
            "rows": args.rows,
            "seed": args.seed,
            "repeats": args.repeats,
            "parquet_bytes": file_bytes,
            "memory_measures": {
                "step_delta_mib": "peak resident set during the step minus the resident set "
                "at its start (VmHWM reset through /proc/self/clear_refs just before); in this "
                "process after malloc_trim, and in each tool's fresh process on its first run "
                "(the ratios use the fresh ones)",
                "tracemalloc_peak_mib": "tracemalloc's peak during another run of the step",
                "process_peak_mib": "getrusage(RUSAGE_SELF).ru_maxrss of a fresh process "
                "that read the Parquet file(s) and ran the step (interpreter, libraries and "
                "the data included); the spawning benchmark lowers its own high-water mark "
                "first, since Linux carries it into the child's ru_maxrss",
                "process_peak_vmhwm_mib": "the same process's VmHWM (its own address space "
                "only): equal to process_peak_mib unless the spawning process's resident set "
                "was larger; the process ratio and the plot use it",
            },
        },
        "data": {
            "features": drift_data.describe(),
            "shifted": list(drift_data.SHIFTED),
            "note": "f00 and f01 move by 0.1 standard deviation: modelyard's default KS "
            "threshold (0.03) sits below the KS distance such a shift makes (about 0.04 for a "
            "normal), while Evidently's default for numeric columns at this size (Wasserstein "
            "distance normed by the reference's standard deviation, threshold 0.1) sits "
            "exactly at it, so Evidently's verdict on them is a coin toss of the sampling noise",
        },
        "modelyard": modelyard,
        "modelyard_fresh_process": fresh,
        "evidently": evidently,
        "verdicts": verdicts,
        "analysis": analyse(modelyard, fresh, evidently),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(
        orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    )
    drift_report.plot(report, args.png)
    drift_report.print_summary(report)
    print(f"wrote {args.out} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
