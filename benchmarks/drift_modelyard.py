"""modelyard's side of the drift benchmarks: the few engine calls they time, in one place, and
a worker that runs the measured step in a fresh process.

The calls are the engine's public ones: ``Profile.from_frame`` (sketch a frame),
``Profile.to_bytes``/``from_bytes`` and ``monitoring.drift.compare(baseline, current, config)``
with the default ``DriftConfig``.

As a script it is the fresh-process measurement of benchmarks/drift.py: it reads the current
window's Parquet file (timed), loads the baseline profile's bytes, runs the step (sketch +
every default test, timed) and prints one JSON object with ``getrusage``'s peak resident set of
the whole process, and the step's own peak over the resident set at its start::

    .venv/bin/python benchmarks/drift_modelyard.py --baseline-profile P --current C.parquet
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import procmem

from modelyard.domain.drift import DriftConfig, DriftReport, Verdict
from modelyard.monitoring.drift import compare as _compare
from modelyard.monitoring.profile import Profile

BENCH_DIR = Path(__file__).resolve().parent
FRESH_TIMEOUT_S = 600.0


def sketch(frame: pd.DataFrame) -> Profile:
    """The profile of a frame (every column an input feature)."""
    return Profile.from_frame(frame)


def compare(baseline: Profile, current: Profile) -> DriftReport:
    """Every default test of ``current`` against ``baseline``."""
    return _compare(baseline, current, DriftConfig())


def to_bytes(profile: Profile) -> bytes:
    return profile.to_bytes()


def config_dict() -> dict[str, Any]:
    """The default configuration the benchmarks use, as the engine writes it."""
    return DriftConfig().to_dict()


def dataset_share_threshold() -> float:
    """The configured share of drifted features at which a dataset drifts."""
    return float(DriftConfig().drift_share)


def alpha() -> float:
    """The configured significance level (the per-feature false-alarm rate it allows)."""
    return float(DriftConfig().alpha)


def feature_results(report: DriftReport) -> dict[str, dict[str, Any]]:
    """Per feature: the deciding test, its effect size, noise bound, threshold and p-value,
    the verdict, whether it is flagged (verdict ``drift``), and ``score_over_threshold``:
    (effect - noise bound) / threshold, the quantity the verdict compares with 1 (alongside
    p < alpha); plus every statistic the engine computed."""
    out: dict[str, dict[str, Any]] = {}
    for f in report.features:
        noise = getattr(f, "noise", None)
        ratio = None
        if f.effect is not None and f.threshold:
            ratio = (f.effect - (noise or 0.0)) / f.threshold
        out[f.name] = {
            "test": f.test,
            "effect": f.effect,
            "noise": noise,
            "threshold": f.threshold,
            "p_value": f.p_value,
            "verdict": f.verdict.value,
            "flagged": f.verdict is Verdict.DRIFT,
            "score_over_threshold": ratio,
            "baseline_rows": f.baseline_rows,
            "current_rows": f.current_rows,
            "stats": {s.test: {"effect": s.effect, "p_value": s.p_value} for s in f.stats},
        }
    return out


def dataset_result(report: DriftReport) -> dict[str, Any]:
    return {
        "verdict": report.verdict.value,
        "drifted_share": report.drifted_share,
        "drifted": report.drifted,
        "quality_issues": [q.to_dict() for q in report.quality],
    }


def size_report(profile: Profile) -> dict[str, Any]:
    """How big a profile is: serialized bytes (in total and per feature), and the bytes its
    numeric sketches hold in memory (bucket ids and counts, int64 each) against their cap."""
    payload = len(profile.to_bytes())
    columns = max(len(profile.columns), 1)
    held = [
        c.numbers.buckets.nbytes + c.numbers.counts.nbytes
        for c in profile.column_profiles
        if c.numbers is not None
    ]
    caps = {c.numbers.cap for c in profile.column_profiles if c.numbers is not None}
    return {
        "rows": profile.row_count,
        "serialized_bytes": payload,
        "serialized_bytes_per_feature": payload / columns,
        "bucket_bytes_per_feature": {
            "mean": sum(held) / len(held) if held else None,
            "max": max(held, default=None),
        },
        "bucket_cap": sorted(caps),
        "bucket_bytes_bound_per_feature": 16 * max(caps) if caps else None,
    }


def run_fresh(profile_path: Path, current_path: Path) -> dict[str, Any]:
    """This module as a script in a fresh interpreter (see the module docstring); its JSON,
    or the error."""
    argv = [sys.executable, str(Path(__file__).resolve())]
    argv += ["--baseline-profile", str(profile_path), "--current", str(current_path)]
    parent_rss = procmem.before_spawn()
    try:
        run = subprocess.run(
            argv, capture_output=True, text=True, timeout=FRESH_TIMEOUT_S, check=False,
            cwd=BENCH_DIR,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {FRESH_TIMEOUT_S:.0f} s"}
    if run.returncode != 0:
        return {"error": f"exit {run.returncode}: {run.stderr[-3000:]}"}
    return {
        **json.loads(run.stdout.strip().splitlines()[-1]),
        "spawning_process_rss_mib": parent_rss,
    }


def _worker(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="modelyard's drift step in a fresh process")
    parser.add_argument("--baseline-profile", type=Path, required=True)
    parser.add_argument("--current", type=Path, required=True)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    current = pd.read_parquet(args.current, engine="pyarrow")
    read_s = time.perf_counter() - start
    baseline = Profile.from_bytes(args.baseline_profile.read_bytes())

    with procmem.StepMemory() as memory:
        start = time.perf_counter()
        profile = sketch(current)
        sketched = time.perf_counter()
        report = compare(baseline, profile)
        done = time.perf_counter()
    print(
        json.dumps(
            {
                "what": "a fresh interpreter: read the Parquet file, load the baseline "
                "profile, then the step (its first run in this process: lazy imports and "
                "first-touch costs included)",
                "rows": len(current),
                "read_s": read_s,
                "step_s": done - start,
                "sketch_s": sketched - start,
                "tests_s": done - sketched,
                "memory": memory.report(),
                "drifted": report.drifted,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
