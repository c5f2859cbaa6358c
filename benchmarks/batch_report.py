"""The batch benchmark's comparisons, targets, figure and printed table (``batch.py``): pure
functions of its measurements."""

from __future__ import annotations

import filecmp
import statistics
from pathlib import Path
from typing import Any

import numpy as np

#: Two predictions are equal "at float32 tolerance" when, as float32, at most this many
#: representable float32 values lie between them (0: the same float32).
MAX_ULPS = 4
TARGET_SPEEDUP_VS_REFERENCE = 2.0
TARGET_PEAK_RSS_MIB = 400.0
TARGET_FLATNESS = 1.10
TARGET_SPEEDUP_VS_MLFLOW = 4.0
TARGET_RESUME_COST = 1.10


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def median_memory(runs: list[dict[str, Any]], key: str = "peak_rss_mib") -> float | None:
    values = [r["memory"][key] for r in runs if r.get("ok", r.get("returncode") == 0)]
    return statistics.median(values) if values else None


def _ordered(values: np.ndarray) -> np.ndarray:
    """float32 values mapped to integers that count representable floats (ulps)."""
    bits = values.astype(np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, np.int64(-(2**31)) - bits, bits)


def compare(mine: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """Row-for-row agreement of two prediction vectors, as float32."""
    if mine.shape != theirs.shape:
        return {"equal": False, "reason": f"{mine.size} rows against {theirs.size}"}
    ulps = np.abs(_ordered(mine) - _ordered(theirs))
    diff = np.abs(mine.astype(np.float32).astype(np.float64) - theirs.astype(np.float32))
    return {
        "rows": int(mine.size),
        "identical_float32_rows": int((ulps == 0).sum()),
        "max_ulps": int(ulps.max(initial=0)),
        "max_abs_diff": float(diff.max(initial=0.0)),
        "equal": bool(ulps.max(initial=0) <= MAX_ULPS),
        "tolerance": f"<= {MAX_ULPS} float32 ulps",
    }


def same_bytes(left: Path, right: Path) -> dict[str, Any]:
    """Whether two output folders hold the same files with the same bytes."""
    names = sorted(p.name for p in left.iterdir() if p.is_file() and not p.name.startswith("."))
    other = sorted(p.name for p in right.iterdir() if p.is_file() and not p.name.startswith("."))
    if names != other:
        return {"identical": False, "files": names, "other_files": other}
    _, mismatch, errors = filecmp.cmpfiles(left, right, names, shallow=False)
    return {"identical": not mismatch and not errors, "files": names, "differ": mismatch}


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers the targets and the figure use."""
    runs = report["runs"]
    ref = [r for r in runs.get("reference", []) if r["ok"]]
    mine = [r for r in runs.get("modelyard", []) if r["ok"]]
    summary: dict[str, Any] = {
        "reference_rows_per_s": median_of(ref, "rows_per_s"),
        "reference_peak_rss_mib": median_memory(ref),
        "modelyard_rows_per_s": median_of(mine, "rows_per_s"),
        "modelyard_peak_rss_mib": median_memory(mine),
        "modelyard_peak_pss_mib": median_memory(mine, "peak_pss_mib"),
    }
    big = runs.get("modelyard_big")
    if big and big["ok"]:
        summary["modelyard_big_rows_per_s"] = big["rows_per_s"]
        summary["modelyard_big_peak_rss_mib"] = big["memory"]["peak_rss_mib"]
        summary["modelyard_big_peak_pss_mib"] = big["memory"]["peak_pss_mib"]
    mlflow = runs.get("mlflow", {})
    summary["mlflow_rows_per_s"] = mlflow.get("rows_per_s")
    summary["mlflow_refuses_headerless_csv"] = mlflow.get("refuses_headerless_csv")
    resume = runs.get("resume", {})
    uninterrupted = median_of(mine, "wall_s")
    if resume.get("ok") and uninterrupted:
        summary["resume_cost"] = resume["total_wall_s"] / uninterrupted
        summary["resumed_identical"] = resume["same_bytes_as_uninterrupted"]["identical"]
    resume_big = runs.get("resume_big", {})
    if resume_big.get("ok") and big and big["ok"]:
        summary["resume_cost_big"] = resume_big["total_wall_s"] / big["wall_s"]
        summary["resumed_big_identical"] = resume_big["same_bytes_as_uninterrupted"]["identical"]
    local, ray = runs.get("engine_local", {}), runs.get("engine_ray", {})
    if local.get("ok") and ray.get("ok"):
        summary["ray_overhead_s"] = ray["wall_s"] - local["wall_s"]
        summary["ray_wall_ratio"] = ray["wall_s"] / local["wall_s"]
        summary["ray_identical_to_local"] = runs["ray_vs_local"]["identical"]
        engine = ray.get("engine_report") or {}
        summary["ray_parts_s"] = {
            key: engine.get(key) for key in ("ray_init_s", "transform_s", "ray_shutdown_s")
        }
        summary["local_engine_transform_s"] = (local.get("engine_report") or {}).get("transform_s")
    agreement = report.get("agreement_with_reference")
    summary["equal_to_reference"] = agreement["equal"] if agreement else None
    summary["bars"] = _bars(report, summary, ref, mine)
    summary["timelines"] = {
        f"modelyard {r['rows']:,} rows": r["memory_timeline"]
        for r in (mine[-1] if mine else None, big if big and big["ok"] else None)
        if r
    }
    return summary


def _bars(report: dict[str, Any], summary: dict[str, Any], ref: list, mine: list) -> list:
    bars = []
    if ref:
        bars.append(
            {
                "label": "reference (pandas script)",
                "wall_s": median_of(ref, "wall_s"),
                "rows_per_s": summary["reference_rows_per_s"],
                "peak_rss_mib": summary["reference_peak_rss_mib"],
            }
        )
    if mine:
        bars.append(
            {
                "label": "modelyard batch",
                "wall_s": median_of(mine, "wall_s"),
                "rows_per_s": summary["modelyard_rows_per_s"],
                "peak_rss_mib": summary["modelyard_peak_rss_mib"],
            }
        )
    runs = report["runs"]
    for key, label in (
        ("modelyard_big", "modelyard batch, 10x rows"),
        ("engine_local", "modelyard engine, local executor"),
        ("engine_ray", "modelyard engine, Ray executor"),
    ):
        run_ = runs.get(key)
        if run_ and run_["ok"]:
            bars.append(
                {
                    "label": label,
                    "wall_s": run_["wall_s"],
                    "rows_per_s": run_["rows_per_s"],
                    "peak_rss_mib": run_["memory"]["peak_rss_mib"],
                }
            )
    mlflow = runs.get("mlflow", {})
    if mlflow.get("rows_per_s"):
        timed = mlflow["attempts"]["dataframe_split_json"]
        bars.append(
            {
                "label": "mlflow models predict (JSON)",
                "wall_s": timed["wall_s"],
                "rows_per_s": mlflow["rows_per_s"],
                "peak_rss_mib": timed["memory"]["peak_rss_mib"],
            }
        )
    return bars


def _target(value: float | None, target: float, met: bool | None, **more: Any) -> dict:
    return {"value": value, "target": target, "met": met, **more}


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with its value and whether it is met (None: not measured)."""
    out: dict[str, Any] = {}
    ref = report["summary"].get("reference_rows_per_s")
    mine = report["summary"].get("modelyard_rows_per_s")
    peak = report["summary"].get("modelyard_peak_rss_mib")
    speedup = mine / ref if mine and ref else None
    out["speedup_vs_reference"] = _target(
        speedup,
        TARGET_SPEEDUP_VS_REFERENCE,
        None if speedup is None else speedup >= TARGET_SPEEDUP_VS_REFERENCE,
    )
    out["peak_rss_mib"] = _target(
        peak, TARGET_PEAK_RSS_MIB, None if peak is None else peak <= TARGET_PEAK_RSS_MIB
    )
    out["speedup_and_memory"] = {
        "met": None
        if None in (out["speedup_vs_reference"]["met"], out["peak_rss_mib"]["met"])
        else bool(out["speedup_vs_reference"]["met"] and out["peak_rss_mib"]["met"]),
        "target": ">= 2x the reference's rows/s with peak RSS <= 400 MiB",
    }
    big = report["summary"].get("modelyard_big_peak_rss_mib")
    ratio = big / peak if big and peak else None
    out["memory_flat_10x_rows"] = _target(
        ratio,
        TARGET_FLATNESS,
        None if ratio is None else ratio <= TARGET_FLATNESS,
        meaning="peak RSS of the 10x-rows run over the 1x run",
    )
    theirs = report["summary"].get("mlflow_rows_per_s")
    vs = mine / theirs if mine and theirs else None
    out["speedup_vs_mlflow"] = _target(
        vs,
        TARGET_SPEEDUP_VS_MLFLOW,
        None if vs is None else vs >= TARGET_SPEEDUP_VS_MLFLOW,
        against="mlflow models predict on the dataframe_split JSON it accepts",
    )
    cost = report["summary"].get("resume_cost")
    out["resume_cost"] = _target(
        cost,
        TARGET_RESUME_COST,
        None if cost is None else cost <= TARGET_RESUME_COST,
        meaning="killed run + resumed run wall time over one uninterrupted run",
    )
    cost_big = report["summary"].get("resume_cost_big")
    if cost_big is not None:
        out["resume_cost_big_file"] = _target(
            cost_big,
            TARGET_RESUME_COST,
            cost_big <= TARGET_RESUME_COST,
            meaning="the same on the 10x-rows file (informative: the target is the 1x run's)",
        )
    probe = report.get("precision_probe")
    if probe:
        exact, lossy = probe["exact"], probe["lossy"]
        out["float32_casts"] = {
            "exact_values_accepted": exact["status"] == "Completed"
            and not exact["mentions_precision"],
            "lossy_values_reported": bool(lossy["mentions_precision"]) or lossy["exit_code"] != 0,
            "met": exact["status"] == "Completed"
            and not exact["mentions_precision"]
            and (bool(lossy["mentions_precision"]) or lossy["exit_code"] != 0),
            "target": "casts to the float32 signature when no precision is lost, and says so "
            "when some would be",
        }
    equal = report["summary"].get("equal_to_reference")
    identical = report["summary"].get("ray_identical_to_local")
    resumed = report["summary"].get("resumed_identical")
    out["outputs"] = {
        "modelyard_equals_reference": equal,
        "ray_byte_identical_to_local": identical,
        "resumed_byte_identical_to_uninterrupted": resumed,
        "met": None if None in (equal, identical) else bool(equal and identical),
    }
    return out


def plot(report: dict[str, Any], path: Path) -> None:
    """Rows/s and peak RSS per contender, and the memory of the 1x and 10x runs over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = report["summary"].get("bars", [])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    labels = [b["label"] for b in bars]
    colors = ["#1f77b4" if b["label"].startswith("modelyard") else "#8c8c8c" for b in bars]
    for ax, key, title, fmt in (
        (axes[0], "rows_per_s", "throughput (rows/s, higher is better)", "%.0f"),
        (axes[1], "peak_rss_mib", "peak RSS of the process tree (MiB)", "%.0f"),
    ):
        values = [b.get(key) or 0.0 for b in bars]
        drawn = ax.bar(range(len(bars)), values, color=colors)
        ax.bar_label(drawn, fmt=fmt, fontsize=8)
        ax.set_xticks(range(len(bars)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(title)
    axes[1].axhline(TARGET_PEAK_RSS_MIB, color="red", ls="--", lw=0.8, label="target 400 MiB")
    axes[1].legend(fontsize=8)
    ax = axes[2]
    for label, timeline in report["summary"].get("timelines", {}).items():
        if timeline:
            xs, ys = zip(*timeline, strict=True)
            end = xs[-1] or 1.0
            ax.plot([x / end for x in xs], ys, label=label)
    ax.set_xlabel("fraction of the run")
    ax.set_ylabel("RSS of the process tree (MiB)")
    ax.set_title("memory over a run: 1x and 10x rows")
    ax.legend(fontsize=8)
    rows = report["parameters"]["rows"]
    fig.suptitle(f"batch predictions, {rows:,}-row headerless CSV, XGBoost 100 trees x depth 6")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(report: dict[str, Any]) -> None:
    """The contenders and the targets, on stdout."""
    print(f"\n{'contender':<44} {'wall s':>8} {'rows/s':>12} {'peak RSS MiB':>13}")
    for bar in report["summary"].get("bars", []):
        rate = bar.get("rows_per_s")
        print(
            f"{bar['label']:<44} {bar.get('wall_s') or float('nan'):>8.2f} "
            f"{rate or float('nan'):>12,.0f} {bar.get('peak_rss_mib') or float('nan'):>13.1f}"
        )
    print("\ntargets:")
    for name, target in report["targets"].items():
        value = target.get("value")
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {name:<28} value={shown:<10} target={target.get('target')}  met={target['met']}")
