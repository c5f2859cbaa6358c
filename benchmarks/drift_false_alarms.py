"""False alarms: modelyard's drift verdicts on data that did not drift, as the sample grows.

A benchmark, not a test: it measures and reports, and never fails because a target is missed.

For each size (10^2, 10^4 and 10^6 rows by default) and each seed, a baseline and a current
window are independent draws of the same 30 features (benchmarks/drift_data.py, none of them
shifted), both of that size. Each is sketched (``Profile.from_frame``) and compared with the
default ``DriftConfig`` (``monitoring.drift.compare``). A feature counts as flagged when its
verdict is ``drift``; ``insufficient_data`` is counted apart (it is not an alarm, and not a
"no drift" either).

The claim checked, at every size, against the two levels ``DriftConfig`` configures:

- the share of feature tests flagged (over all seeds) stays at or under ``alpha``, the
  per-feature false-alarm rate the configuration allows (its 95 % Clopper-Pearson interval is
  reported too: 200 seeds x 30 features is 6,000 tests per size, 20 seeds at 10^6 rows);
- no seed's flagged share reaches ``drift_share``, so no seed reports dataset drift;

and, since verdicts rest on effect sizes, the share does not grow with the rows.

Writes ``benchmarks/results/drift_false_alarms.json`` (per size: every seed's flagged share and
dataset verdict, the per-feature flag rate, the largest score over its threshold) and
``drift_false_alarms.png`` (flagged share against rows), and prints a table.

Run (from the repository root)::

    .venv/bin/python benchmarks/drift_false_alarms.py      # 200 seeds (20 at 10^6), ~3 min
    .venv/bin/python benchmarks/drift_false_alarms.py --seeds 20 --large-seeds 3  # quick
    .venv/bin/python benchmarks/drift_false_alarms.py --sizes 100,1000,10000 --seeds 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import drift_data
import drift_modelyard
import orjson
from machine import machine_info
from scipy.stats import binomtest

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "drift_false_alarms.json"
DEFAULT_SIZES = (100, 10_000, 1_000_000)
DEFAULT_SEEDS = 200
DEFAULT_LARGE_SEEDS = 20
#: Sizes from this many rows on use ``--large-seeds`` (drawing 2 x 10^6 rows x 30 features
#: takes seconds per seed; smaller sizes take milliseconds).
LARGE_ROWS = 1_000_000
FIRST_SEED = 1_000


def run_size(rows: int, seeds: int) -> dict[str, Any]:
    """Every seed at one size: flagged shares, dataset verdicts, per-feature flags."""
    per_seed = []
    flags: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    start = time.perf_counter()
    for seed in range(FIRST_SEED, FIRST_SEED + seeds):
        baseline = drift_data.frame(rows, seed, drift_data.BASELINE, shifted=False)
        current = drift_data.frame(rows, seed, drift_data.CURRENT, shifted=False)
        report = drift_modelyard.compare(
            drift_modelyard.sketch(baseline), drift_modelyard.sketch(current)
        )
        features = drift_modelyard.feature_results(report)
        flagged = sorted(name for name, f in features.items() if f["flagged"])
        insufficient = sum(f["verdict"] == "insufficient_data" for f in features.values())
        flags.update(flagged)
        verdicts.update(f["verdict"] for f in features.values())
        scores = [f["score_over_threshold"] for f in features.values()]
        dataset = drift_modelyard.dataset_result(report)
        per_seed.append(
            {
                "seed": seed,
                "flagged": flagged,
                "flagged_share": len(flagged) / len(features),
                "insufficient_share": insufficient / len(features),
                "dataset_verdict": dataset["verdict"],
                "max_score_over_threshold": max((s for s in scores if s is not None), default=None),
            }
        )
    shares = [s["flagged_share"] for s in per_seed]
    maxima = [
        s["max_score_over_threshold"] for s in per_seed if s["max_score_over_threshold"] is not None
    ]
    tests = seeds * drift_data.N_FEATURES
    interval = binomtest(sum(flags.values()), tests).proportion_ci(0.95, method="exact")
    return {
        "rows": rows,
        "seeds": seeds,
        "seconds": time.perf_counter() - start,
        "flagged_share": {
            "mean": statistics.fmean(shares),
            "max": max(shares),
            "seeds_with_any_flag": sum(share > 0 for share in shares),
        },
        "feature_flag_rate": sum(flags.values()) / tests,
        "feature_flag_rate_95ci": [interval.low, interval.high],
        "flags_by_feature": dict(sorted(flags.items())),
        "verdict_counts": dict(sorted(verdicts.items())),
        "dataset_drift_verdicts": sum(s["dataset_verdict"] == "drift" for s in per_seed),
        "max_score_over_threshold": {
            "median": statistics.median(maxima) if maxima else None,
            "max": max(maxima) if maxima else None,
        },
        "per_seed": per_seed,
    }


def plot(report: dict[str, Any], path: Path) -> None:
    """Flagged share per seed against rows, with the configured level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level, alpha = report["configured_level"], report["alpha"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for size in report["sizes"]:
        rows, shares = size["rows"], [s["flagged_share"] for s in size["per_seed"]]
        jitter = [rows * (1 + 0.15 * ((i % 7) - 3) / 3) for i in range(len(shares))]
        ax.scatter(jitter, shares, s=10, alpha=0.5, color="#1f77b4")
    rows = [size["rows"] for size in report["sizes"]]
    ax.plot(rows, [s["flagged_share"]["mean"] for s in report["sizes"]], "o-", label="mean")
    low = [s["feature_flag_rate_95ci"][0] for s in report["sizes"]]
    high = [s["feature_flag_rate_95ci"][1] for s in report["sizes"]]
    ax.fill_between(rows, low, high, alpha=0.15, label="95% interval of the rate")
    ax.plot(rows, [s["flagged_share"]["max"] for s in report["sizes"]], "s--", label="max")
    ax.axhline(level, color="red", lw=0.8, ls="--", label=f"drift_share {level:g} (dataset)")
    ax.axhline(alpha, color="orange", lw=0.8, ls=":", label=f"alpha {alpha:g} (per feature)")
    ax.set_xscale("log")
    ax.set_xlabel("rows (baseline and current each)")
    ax.set_ylabel("share of the 30 features flagged")
    ax.set_ylim(-0.02, max(0.1, level * 1.15))
    ax.set_title("flagged share per seed, unshifted data")
    ax.legend(fontsize=8)

    ax = axes[1]
    for size in report["sizes"]:
        values = [
            s["max_score_over_threshold"]
            for s in size["per_seed"]
            if s["max_score_over_threshold"] is not None
        ]
        if values:
            ax.boxplot(values, positions=[size["rows"]], widths=size["rows"] * 0.5)
    ax.axhline(1.0, color="red", lw=0.8, ls="--", label="effect threshold")
    ax.set_xscale("log")
    ax.set_xlabel("rows")
    ax.set_ylabel("largest (effect - noise bound) / threshold")
    ax.set_title("the closest feature per seed (drift at >= 1, and p < alpha)")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"false alarms: {report['parameters']['seeds']} seeds per size "
        f"({report['parameters']['large_seeds']} from {LARGE_ROWS:,} rows), default DriftConfig "
        f"({report['machine']['nproc']} cores)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",") if part.strip()],
        default=list(DEFAULT_SIZES),
        help="comma-separated row counts",
    )
    parser.add_argument(
        "--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds per size below {LARGE_ROWS:,}"
    )
    parser.add_argument(
        "--large-seeds",
        type=int,
        default=DEFAULT_LARGE_SEEDS,
        help=f"seeds per size of {LARGE_ROWS:,} rows or more",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report")
    parser.add_argument("--png", type=Path, help="figure (default: the JSON path as .png)")
    args = parser.parse_args(argv)
    if min(args.seeds, args.large_seeds, *args.sizes) < 1:
        parser.error("--seeds, --large-seeds and --sizes must be positive")
    args.png = args.png or args.out.with_suffix(".png")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    machine = machine_info("modelyard", "numpy", "pandas")
    level, alpha = drift_modelyard.dataset_share_threshold(), drift_modelyard.alpha()
    sizes = []
    for rows in args.sizes:
        seeds = args.large_seeds if rows >= LARGE_ROWS else args.seeds
        size = run_size(rows, seeds)
        sizes.append(size)
        print(
            f"{rows:>9,} rows: flagged share mean {size['flagged_share']['mean']:.3f}, max "
            f"{size['flagged_share']['max']:.3f}; per-feature rate "
            f"{size['feature_flag_rate']:.4f}; verdicts {size['verdict_counts']}; "
            f"dataset drift {size['dataset_drift_verdicts']}/{seeds} "
            f"({size['seconds']:.0f} s)",
            flush=True,
        )
    per_size = {
        str(s["rows"]): {
            "feature_flag_rate_at_most_alpha": s["feature_flag_rate"] <= alpha,
            "no_seed_reaches_drift_share": s["flagged_share"]["max"] < level,
        }
        for s in sizes
    }
    report = {
        "benchmark": "drift_false_alarms",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "parameters": {
            "sizes": args.sizes,
            "seeds": args.seeds,
            "large_seeds": args.large_seeds,
            "large_rows": LARGE_ROWS,
            "first_seed": FIRST_SEED,
            "data": "benchmarks/drift_data.py, all 30 features unshifted; baseline and "
            "current independent draws of the same size",
        },
        "config": drift_modelyard.config_dict(),
        "configured_level": level,
        "alpha": alpha,
        "claim": {
            "what": "at every size: the share of feature tests flagged over all seeds is at "
            "most alpha (the configured per-feature false-alarm rate), and no seed's flagged "
            "share reaches drift_share (no dataset drift)",
            "met": all(all(v.values()) for v in per_size.values())
            and not any(s["dataset_drift_verdicts"] for s in sizes),
            "per_size": per_size,
        },
        "sizes": sizes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    plot(report, args.png)
    print(f"claim met: {report['claim']['met']}; wrote {args.out} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
