"""Compiled tree inference against each library's own predict, per model flavor.

A benchmark, not a test: it measures and reports, and never fails because a number is poor.

For each flavor (XGBoost, LightGBM, scikit-learn random forest and gradient boosting), on
generated data (``make_classification``, 30 features, fixed seed; nothing is downloaded):

1. trains a binary classifier and wraps it in the runtime's ``LoadedModel`` (what serving
   calls: ``XGBoostLoaded``, ``LightGBMLoaded``, ``SklearnLoaded``);
2. runs ``modelyard.runtimes.trees.choose`` twice on a real ``FsspecArtifactStore`` in a
   temporary folder: first with an empty cache (conversion + verification, results stored),
   then with the warm cache (a restart or a second server), and records both load costs,
   whether the compiled predictor was chosen, and how many rows verified it;
3. times ``predict`` of the native model and of the compiled one (``Choice.model``) on one row
   and on 64 rows: the median of many calls, in microseconds (every call timed alone);
4. optionally times treelite's GTIL the same way, for reference, when treelite is importable.

Writes ``benchmarks/results/compiled_trees.json`` and ``compiled_trees.png`` and prints a table.

Run (from the repository root)::

    .venv/bin/python benchmarks/compiled_trees.py            # ~1-2 minutes on 2 cores
    .venv/bin/python benchmarks/compiled_trees.py --quick    # shorter timing budget
    .venv/bin/python benchmarks/compiled_trees.py --flavors xgboost,lightgbm
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from machine import machine_info as shared_machine_info
from rich.console import Console
from rich.table import Table
from sklearn.datasets import make_classification

# Threads: one per predict, as the runtimes set them (parallelism comes from server workers).
os.environ.setdefault("OMP_NUM_THREADS", "1")

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
DEFAULT_OUT = RESULTS / "compiled_trees.json"

N_SAMPLES = 20_000
N_FEATURES = 30
N_TREES = 100
SEED = 20_240_601  # as benchmarks/serving.py
EXAMPLE_ROWS = 5
BATCH_ROWS = 64
TIME_BUDGET_S = 2.0  # per (flavor, predictor, batch size)
QUICK_TIME_BUDGET_S = 0.5
MIN_CALLS, MAX_CALLS = 30, 5000

FLAVORS = ("xgboost", "lightgbm", "random_forest", "gradient_boosting")


# --------------------------------------------------------------------------------------------
# Models


@dataclass(frozen=True)
class Trained:
    """One trained model: the runtime's LoadedModel, its flavor, its bytes and its recipe."""

    name: str
    flavor: str  # the runtime flavor choose() takes
    description: str
    loaded: Any  # LoadedModel
    raw: Any  # the library's own model (for treelite)
    data: bytes  # serialised, as a package would hold it; its sha256 is the cache key
    train_s: float
    load_native_s: float  # deserialising ``data`` again (what a server pays without compiling)


def _data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(
        n_samples=N_SAMPLES,
        n_features=N_FEATURES,
        n_informative=12,
        n_redundant=6,
        random_state=SEED,
    )


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def train_xgboost(x: np.ndarray, y: np.ndarray) -> Trained:
    import xgboost

    from modelyard.runtimes.xgboost_runtime import XGBoostLoaded

    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": SEED}
    booster, train_s = _timed(
        lambda: xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=N_TREES)
    )
    data = bytes(booster.save_raw("ubj"))

    def load() -> Any:
        fresh = xgboost.Booster()
        fresh.load_model(bytearray(data))
        return fresh

    _, load_s = _timed(load)
    return Trained(
        "xgboost", "xgboost", f"XGBoost binary:logistic, {N_TREES} trees, depth 6",
        XGBoostLoaded(booster), booster, data, train_s, load_s,
    )  # fmt: skip


def train_lightgbm(x: np.ndarray, y: np.ndarray) -> Trained:
    import lightgbm

    from modelyard.runtimes.lightgbm_runtime import LightGBMLoaded

    params = {"objective": "binary", "num_leaves": 31, "seed": SEED, "verbose": -1}
    booster, train_s = _timed(
        lambda: lightgbm.train(params, lightgbm.Dataset(x, label=y), num_boost_round=N_TREES)
    )
    data = booster.model_to_string().encode()
    _, load_s = _timed(lambda: lightgbm.Booster(model_str=data.decode()))
    return Trained(
        "lightgbm", "lightgbm", f"LightGBM binary, {N_TREES} trees, 31 leaves",
        LightGBMLoaded(booster), booster, data, train_s, load_s,
    )  # fmt: skip


def _train_sklearn(name: str, description: str, estimator: Any, x: Any, y: Any) -> Trained:
    from modelyard.runtimes.sklearn_runtime import SklearnLoaded

    _, train_s = _timed(lambda: estimator.fit(x, y))
    if "n_jobs" in estimator.get_params():
        estimator.set_params(n_jobs=None)  # predict on one thread, as the other flavors
    data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    _, load_s = _timed(lambda: pickle.loads(data))
    return Trained(
        name, "sklearn", description, SklearnLoaded(estimator), estimator, data, train_s, load_s
    )


def train_random_forest(x: np.ndarray, y: np.ndarray) -> Trained:
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=N_TREES, random_state=SEED, n_jobs=2)
    return _train_sklearn(
        "random_forest", f"RandomForestClassifier, {N_TREES} trees, full depth", forest, x, y
    )


def train_gradient_boosting(x: np.ndarray, y: np.ndarray) -> Trained:
    from sklearn.ensemble import GradientBoostingClassifier

    boosting = GradientBoostingClassifier(n_estimators=N_TREES, random_state=SEED)
    return _train_sklearn(
        "gradient_boosting",
        f"GradientBoostingClassifier, {N_TREES} trees, depth 3",
        boosting,
        x,
        y,
    )


TRAINERS: dict[str, Callable[[np.ndarray, np.ndarray], Trained]] = {
    "xgboost": train_xgboost,
    "lightgbm": train_lightgbm,
    "random_forest": train_random_forest,
    "gradient_boosting": train_gradient_boosting,
}


# --------------------------------------------------------------------------------------------
# Measuring


def time_calls(call: Callable[[], Any], budget_s: float) -> dict[str, float]:
    """Time ``call`` one call at a time until ``budget_s`` is spent (within call bounds).

    Returns the median, 10th and 90th percentiles in microseconds, and the call count.
    """
    for _ in range(3):  # warm caches and lazy initialisation
        call()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < MAX_CALLS and (len(times) < MIN_CALLS or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    ordered = sorted(times)
    return {
        "median_us": statistics.median(ordered) * 1e6,
        "p10_us": ordered[len(ordered) // 10] * 1e6,
        "p90_us": ordered[(len(ordered) * 9) // 10] * 1e6,
        "calls": len(ordered),
    }


_VERIFIED = re.compile(r"([\d,]+) (?:predicted classes|predictions) agree")


def verification_rows(reason: str) -> int | None:
    """The row count ``Choice.reason`` states (``compiled (...): 2,048 predictions agree``)."""
    found = _VERIFIED.search(reason)
    return int(found.group(1).replace(",", "")) if found else None


def load_costs(trained: Trained, example: np.ndarray, store_dir: Path) -> tuple[Any, dict]:
    """Two ``choose`` calls on one artifact store: empty cache, then warm.

    Returns the first choice's predictor and the record of both.
    """
    from modelyard.runtimes.trees import choose
    from modelyard.storage.artifacts import FsspecArtifactStore

    digest = hashlib.sha256(trained.data).hexdigest()
    record: dict[str, Any] = {}
    model = None
    for label in ("cold", "warm"):
        store = FsspecArtifactStore(str(store_dir))  # a new instance: nothing kept in memory
        choice, wall_s = _timed(
            lambda store=store: choose(
                trained.loaded, trained.flavor, "auto",
                artifacts=store, digest=digest, example=example,
            )
        )  # fmt: skip
        record[label] = {
            "kind": choice.kind,
            "reason": choice.reason,
            "cached": choice.cached,
            "prepare_s": choice.prepare_s,
            "choose_wall_s": wall_s,  # prepare_s plus timing both predictors on one row
            "verification_rows": verification_rows(choice.reason),
            "row_us_measured_by_choose": choice.to_dict()["row_us"],
            "native_row_us_measured_by_choose": choice.to_dict()["native_row_us"],
        }
        if model is None:
            model = choice.model
    record["compiled_bytes"] = getattr(model, "size", None)
    record["convert_only_s"] = convert_seconds(trained)
    record["model_bytes"] = len(trained.data)
    return model, record


def convert_seconds(trained: Trained) -> float | None:
    """The conversion alone (no cache, no verification), to split the cold load cost."""
    from modelyard.runtimes.trees.converters import CONVERTERS, NotCompilable

    try:
        return _timed(lambda: CONVERTERS[trained.flavor](trained.loaded))[1]
    except NotCompilable:
        return None


def agreement(native: Any, compiled: Any, rows: np.ndarray) -> dict[str, Any]:
    """How the two predictors compare on held-out rows (a sanity check beside the timings)."""
    a, b = np.asarray(native.predict(rows)), np.asarray(compiled.predict(rows))
    if a.dtype.kind in "fc":
        return {"rows": len(rows), "max_abs_diff": float(np.max(np.abs(a - b)))}
    return {"rows": len(rows), "differing_labels": int(np.sum(a != b))}


def treelite_predict(trained: Trained) -> Callable[[np.ndarray], Any] | None:
    """treelite's GTIL predict for the model (for reference), or None when not installed."""
    try:
        import treelite
    except ImportError:
        return None
    if trained.name == "xgboost":
        model = treelite.frontend.from_xgboost(trained.raw)
    elif trained.name == "lightgbm":
        model = treelite.frontend.from_lightgbm(trained.raw)
    else:
        model = treelite.sklearn.import_model(trained.raw)
    return lambda rows: treelite.gtil.predict(model, rows, nthread=1)


def measure(trained: Trained, x_test: np.ndarray, example: np.ndarray, budget_s: float) -> dict:
    """Everything about one flavor."""
    with tempfile.TemporaryDirectory(prefix="modelyard-trees-bench-") as tmp:
        compiled, load = load_costs(trained, example, Path(tmp) / "artifacts")
    one, batch = x_test[:1], x_test[:BATCH_ROWS]
    native = trained.loaded
    record: dict[str, Any] = {
        "flavor": trained.flavor,
        "model": trained.description,
        "train_s": trained.train_s,
        "native_deserialise_s": trained.load_native_s,
        "load": load,
        "served": load["cold"]["kind"],
        "agreement_on_test_rows": agreement(native, compiled, x_test[:2000]),
        "predict": {},
    }
    predictors: dict[str, Callable[[np.ndarray], Any]] = {"native": native.predict}
    if compiled is not native:
        predictors["compiled"] = compiled.predict
    try:
        gtil = treelite_predict(trained)
    except Exception as exc:  # an API treelite changed: recorded, not fatal
        record["treelite_error"] = f"{type(exc).__name__}: {exc}"
        gtil = None
    if gtil is not None:
        predictors["treelite_gtil"] = gtil
    for name, predict in predictors.items():
        record["predict"][name] = {
            "1_row": time_calls(lambda p=predict: p(one), budget_s),
            f"{BATCH_ROWS}_rows": time_calls(lambda p=predict: p(batch), budget_s),
        }
    for size in ("1_row", f"{BATCH_ROWS}_rows"):
        if "compiled" in record["predict"]:
            ratio = (
                record["predict"]["native"][size]["median_us"]
                / record["predict"]["compiled"][size]["median_us"]
            )
            record.setdefault("speedup", {})[size] = ratio
    return record


# --------------------------------------------------------------------------------------------
# Report


def machine_info() -> dict[str, Any]:
    return shared_machine_info(
        "numpy",
        "xgboost",
        "lightgbm",
        "scikit-learn",
        "onnxruntime",
        "onnxmltools",
        "skl2onnx",
        "onnx",
        "treelite",
        "modelyard",
    )


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.0f}"


def print_table(console: Console, report: dict[str, Any]) -> None:
    """Predict times (medians) and load costs per flavor."""
    has_gtil = any("treelite_gtil" in r["predict"] for r in report["results"])
    table = Table(title="compiled tree inference (median µs per predict call; load in ms)")
    columns = ["model", "served", "native 1", "compiled 1", "x", "native 64", "compiled 64", "x"]
    columns += ["treelite 1", "treelite 64"] if has_gtil else []
    columns += ["convert+verify", "(convert)", "warm cache", "verified rows"]
    for column in columns:
        left = column in ("model", "served")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    for r in report["results"]:
        p = r["predict"]

        def med(name: str, size: str, p: dict = p) -> float | None:
            return p[name][size]["median_us"] if name in p else None

        speed = r.get("speedup", {})
        row = [
            r["name"],
            r["served"],
            _us(med("native", "1_row")),
            _us(med("compiled", "1_row")),
            f"{speed['1_row']:.1f}" if "1_row" in speed else "-",
            _us(med("native", "64_rows")),
            _us(med("compiled", "64_rows")),
            f"{speed['64_rows']:.1f}" if "64_rows" in speed else "-",
        ]
        if has_gtil:
            row += [_us(med("treelite_gtil", "1_row")), _us(med("treelite_gtil", "64_rows"))]
        row += [
            f"{r['load']['cold']['prepare_s'] * 1e3:,.0f}",
            _ms(r["load"]["convert_only_s"]),
            f"{r['load']['warm']['prepare_s'] * 1e3:,.0f}",
            f"{r['load']['cold']['verification_rows'] or '-':,}",
        ]
        table.add_row(*row)
    console.print(table)
    if report["treelite"] != "installed":
        console.print(f"treelite: {report['treelite']}", markup=False)


def plot(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: native vs compiled median predict time, one row and 64 rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = [r["name"].replace("_", "\n") for r in results]
    series = ["native", "compiled"] + (
        ["treelite_gtil"] if any("treelite_gtil" in r["predict"] for r in results) else []
    )
    colours = {"native": "#8c8c8c", "compiled": "#1f77b4", "treelite_gtil": "#2ca02c"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(series)
    for ax, size, title in (
        (axes[0], "1_row", "one row"),
        (axes[1], f"{BATCH_ROWS}_rows", f"{BATCH_ROWS} rows"),
    ):
        for k, name in enumerate(series):
            values = [r["predict"].get(name, {}).get(size, {}).get("median_us") for r in results]
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(results))]
            bars = ax.bar(
                [x for x, v in zip(xs, values, strict=True) if v is not None],
                [v for v in values if v is not None],
                width,
                label=name,
                color=colours[name],
            )
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
        ax.set_yscale("log")
        ax.set_xticks(range(len(results)), names)
        ax.set_ylabel("median µs per predict call (log scale)")
        ax.set_title(f"predict, {title}")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"native vs compiled tree predictors ({N_TREES} trees, {N_FEATURES} features, "
        f"1 thread; {report['machine']['nproc']} cores, load "
        f"{report['machine']['load_average_at_start'][0]:.1f} at start)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--flavors",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=list(FLAVORS),
        help=f"comma-separated, of {', '.join(FLAVORS)}",
    )
    parser.add_argument("--quick", action="store_true", help="shorter timing budget per series")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report")
    parser.add_argument("--png", type=Path, help="figure (default: the JSON path as .png)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.flavors) - set(FLAVORS))
    if unknown:
        parser.error(f"unknown flavor(s) {unknown}; known: {', '.join(FLAVORS)}")
    args.png = args.png or args.out.with_suffix(".png")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    budget = QUICK_TIME_BUDGET_S if args.quick else TIME_BUDGET_S
    started, machine = datetime.now(UTC), machine_info()
    x, y = _data()
    split = N_SAMPLES * 3 // 4
    x_train, y_train, x_test = x[:split], y[:split], x[split:]
    example = x_test[:EXAMPLE_ROWS]
    results = []
    for name in args.flavors:
        print(f"{name}: training", flush=True)
        trained = TRAINERS[name](x_train, y_train)
        record = {"name": name, **measure(trained, x_test, example, budget)}
        results.append(record)
        speed = record.get("speedup", {})
        print(
            f"{name}: served {record['served']}, speedup 1 row "
            f"{speed.get('1_row', float('nan')):.1f}x, 64 rows "
            f"{speed.get('64_rows', float('nan')):.1f}x, convert+verify "
            f"{record['load']['cold']['prepare_s']:.2f} s, warm "
            f"{record['load']['warm']['prepare_s']:.3f} s",
            flush=True,
        )
    try:
        import treelite  # noqa: F401

        treelite_state = "installed"
    except ImportError:
        treelite_state = "treelite not installed (column skipped)"
    report = {
        "benchmark": "compiled_trees",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "parameters": {
            "data": f"sklearn make_classification(n_samples={N_SAMPLES}, "
            f"n_features={N_FEATURES}, n_informative=12, n_redundant=6, random_state={SEED})",
            "train_rows": split,
            "timed_rows": "the first 1 and 64 rows of the held-out quarter, float64",
            "timing": "each call timed alone with perf_counter; median of as many calls as "
            f"fit in {budget} s ({MIN_CALLS}-{MAX_CALLS} calls), after 3 warm-up calls",
            "predict": "LoadedModel.predict of the native runtime and of Choice.model "
            "(what serving calls)",
            "threads": "one per predict (XGBoost nthread=1, LightGBM num_threads=1, sklearn "
            "n_jobs=None, onnxruntime intra_op_num_threads=1; OMP_NUM_THREADS=1)",
            "load": "cold: choose() with an empty FsspecArtifactStore cache (convert, verify, "
            "store); warm: choose() again on the same store (cached graph and verdict)",
            "example_rows": EXAMPLE_ROWS,
            "quick": args.quick,
        },
        "treelite": treelite_state,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    plot(report, args.png)
    print_table(Console(width=max(shutil.get_terminal_size((160, 24)).columns, 160)), report)
    print(f"wrote {args.out} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
