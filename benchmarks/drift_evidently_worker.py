"""Evidently's side of benchmarks/drift.py: runs inside Evidently's own virtualenv
(benchmarks/.venvs/evidently, pandas < 3), never in modelyard's, and imports nothing from
modelyard.

It reads the same two Parquet files as the modelyard side, runs Evidently's data drift preset
(``Report([DataDriftPreset()], include_tests=True).run(current, reference)``, all defaults), and
prints one JSON object: the time to import Evidently, to read the files and to run the report;
the memory of the report step (peak resident set during it minus the resident set at its
start) and of the whole process (``getrusage`` peak, and ``VmHWM``); and, per column, the
method Evidently chose, its threshold, its score and whether its drift test failed (a drifted
column).

Run by benchmarks/drift.py; by hand::

    benchmarks/.venvs/evidently/bin/python benchmarks/drift_evidently_worker.py \\
        --reference baseline.parquet --current current.parquet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import procmem


def _columns(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-column method, threshold, score and drift flag from a snapshot's ``dict()``."""
    by_metric: dict[str, dict[str, Any]] = {}
    for metric in result["metrics"]:
        params = metric["config"]
        if params.get("type", "").endswith("ValueDrift"):
            by_metric[metric["id"]] = {
                "column": params["column"],
                "method": params.get("method"),
                "threshold": params.get("threshold"),
                "score": metric["value"],
                "drift": None,
            }
    for test in result["tests"]:
        metric_id = test["metric_config"]["metric_id"]
        if metric_id in by_metric:
            by_metric[metric_id]["drift"] = test["status"] == "FAIL"
    return {entry.pop("column"): entry for entry in by_metric.values()}


def _dataset(result: dict[str, Any]) -> dict[str, Any]:
    for metric in result["metrics"]:
        if metric["config"].get("type", "").endswith("DriftedColumnsCount"):
            return {
                "drifted_count": metric["value"]["count"],
                "drifted_share": metric["value"]["share"],
                "drift_share_threshold": metric["config"].get("drift_share"),
            }
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evidently data drift preset, timed")
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - start

    start = time.perf_counter()
    reference = pd.read_parquet(args.reference, engine="pyarrow")
    current = pd.read_parquet(args.current, engine="pyarrow")
    read_s = time.perf_counter() - start

    with procmem.StepMemory() as memory:
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
        run_s = time.perf_counter() - start

    result = snapshot.dict()
    from importlib.metadata import version

    print(
        json.dumps(
            {
                "versions": {p: version(p) for p in ("evidently", "pandas", "numpy", "scipy")},
                "rows": {"reference": len(reference), "current": len(current)},
                "import_s": import_s,
                "read_s": read_s,
                "run_s": run_s,
                "memory": memory.report(),
                "dataset": _dataset(result),
                "columns": _columns(result),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
