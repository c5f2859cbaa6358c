"""The V2 serving benchmark's report: summaries, paired ratios, targets, table and figure.

Ratios between two series are taken per round (the two runs of one repetition ran one right
after the other, so a shared machine's slow minutes hit both) and the median of those paired
ratios is what a target is judged on; the ratio of the medians is reported beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# Series names, shared with v2_serving.py. "modelyard" runs with the flags of CORE_BEFORE's
# server (no --grpc-port); "modelyard+grpc" is the same code started with --grpc-port.
SAGEMAKER = "modelyard sagemaker"
V2_REST = "modelyard v2-rest"
SAGEMAKER_GRPC = "modelyard+grpc sagemaker"
GRPC_H2LOAD = "modelyard+grpc v2-grpc (h2load)"
GRPC_PYTHON = "modelyard+grpc v2-grpc (python client)"
MLSERVER = "mlserver v2-rest"
MLSERVER_BATCHED = "mlserver v2-rest (adaptive batching)"
CORE_BEFORE = "modelyard@329b317 sagemaker"
MLSERVER_SERIES = (MLSERVER, MLSERVER_BATCHED)
# The order series run in within a round (rotated from round to round): the two series of
# each paired ratio that matters most run next to each other (V2 REST | SageMaker | 329b317 |
# SageMaker with gRPC | gRPC), so that a shared machine's slow minutes fall on both alike.
RUN_ORDER = (
    V2_REST, SAGEMAKER, CORE_BEFORE, SAGEMAKER_GRPC, GRPC_H2LOAD, GRPC_PYTHON, MLSERVER,
    MLSERVER_BATCHED,
)  # fmt: skip
MODELYARD_SERIES = (SAGEMAKER, V2_REST, SAGEMAKER_GRPC, GRPC_H2LOAD, GRPC_PYTHON, CORE_BEFORE)

# The targets.
V2_VS_SAGEMAKER_MIN = 0.95
V2_VS_MLSERVER_MIN = 5.0
CORE_OVERHEAD_MAX = 0.03
MLSERVER_CONNECTIONS = 64
CONTENTION_WARN_CORES = 0.25

SUMMARY_METRICS = (
    "rps", "p50_ms", "p90_ms", "p99_ms", "cpu_us_per_request", "server_cpu_s", "client_cpu_s",
    "cpu_busy_fraction", "other_cpu_s", "idle_bench_servers_cpu_s",
)  # fmt: skip
TABLE_COLUMNS = (
    "series", "client", "conns", "reps", "rps", "p50 ms", "p99 ms", "errors", "server CPU us/req",
    "client CPU s", "busy", "other CPU s",
)  # fmt: skip


def _median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(series: dict[str, Any], connections: int, runs: list[dict[str, Any]]) -> dict:
    """One result row: medians over the repetitions, errors summed, repetitions kept."""
    errors: dict[str, int] = {}
    for run in runs:
        for kind, count in run["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    return {
        "series": series["name"],
        "server": series["server"],
        "route": series["route"],
        "client": series["client"],
        "connections": connections,
        "repeats": len(runs),
        **{metric: _median(run.get(metric) for run in runs) for metric in SUMMARY_METRICS},
        "errors": errors,
        "repetitions": runs,
    }


def run_rank(name: str) -> int:
    """A series' place in ``RUN_ORDER`` (unknown series run last)."""
    return RUN_ORDER.index(name) if name in RUN_ORDER else len(RUN_ORDER)


def _row(rows: list[dict[str, Any]], series: str, connections: int) -> dict[str, Any] | None:
    """The result row of one series at one connection count."""
    return next(
        (r for r in rows if r["series"] == series and r["connections"] == connections), None
    )


def paired_ratio(
    rows: list[dict[str, Any]], numerator: str, denominator: str, connections: int, metric: str
) -> dict[str, Any] | None:
    """``numerator``'s metric over ``denominator``'s: per round, their median, and medians'."""
    top, bottom = _row(rows, numerator, connections), _row(rows, denominator, connections)
    if not top or not bottom or not top[metric] or not bottom[metric]:
        return None
    below = {run["round"]: run[metric] for run in bottom["repetitions"] if run.get(metric)}
    per_round = [
        run[metric] / below[run["round"]]
        for run in top["repetitions"]
        if run.get(metric) and run["round"] in below
    ]
    return {
        "numerator": numerator,
        "denominator": denominator,
        # Routes of one server (same flags) or of two different servers.
        "same_server": top["server"] == bottom["server"],
        "connections": connections,
        "metric": metric,
        "per_round": per_round,
        "median_of_paired": _median(per_round),
        "of_medians": top[metric] / bottom[metric],
    }


def ratios(rows: list[dict[str, Any]], connection_counts: list[int]) -> list[dict[str, Any]]:
    """Every comparison the issue asks about, at every connection count measured."""
    pairs = [
        (V2_REST, SAGEMAKER, "rps"),  # same server
        (SAGEMAKER, CORE_BEFORE, "rps"),  # same flags, code before/after the core
        (SAGEMAKER_GRPC, SAGEMAKER, "rps"),  # same code, with/without --grpc-port
        (V2_REST, MLSERVER, "rps"),
        (V2_REST, MLSERVER_BATCHED, "rps"),
        (V2_REST, MLSERVER, "p99_ms"),
        (V2_REST, MLSERVER_BATCHED, "p99_ms"),
        (GRPC_H2LOAD, SAGEMAKER_GRPC, "rps"),  # same server
        (GRPC_PYTHON, SAGEMAKER_GRPC, "rps"),
        (GRPC_H2LOAD, V2_REST, "rps"),  # different servers (only one of them serves gRPC)
        # Server CPU per request: less sensitive than rps to other users of a shared machine.
        (V2_REST, SAGEMAKER, "cpu_us_per_request"),
        (SAGEMAKER, CORE_BEFORE, "cpu_us_per_request"),
        (SAGEMAKER_GRPC, SAGEMAKER, "cpu_us_per_request"),
        (GRPC_H2LOAD, SAGEMAKER_GRPC, "cpu_us_per_request"),
    ]
    found = []
    for connections in connection_counts:
        for numerator, denominator, metric in pairs:
            ratio = paired_ratio(rows, numerator, denominator, connections, metric)
            if ratio:
                found.append(ratio)
    return found


def grpc_cost(rows: list[dict[str, Any]], connection_counts: list[int]) -> list[dict[str, Any]]:
    """What enabling ``--grpc-port`` costs a SageMaker-route HTTP request, per connection count:
    the rps lost (``1 - with/without``) and the server CPU added per request
    (``with/without - 1``), from the paired ratios of the same code with and without it."""
    found = []
    for connections in connection_counts:
        rps = paired_ratio(rows, SAGEMAKER_GRPC, SAGEMAKER, connections, "rps")
        cpu = paired_ratio(rows, SAGEMAKER_GRPC, SAGEMAKER, connections, "cpu_us_per_request")
        if rps or cpu:
            found.append(
                {
                    "connections": connections,
                    "rps_lost": None if not rps else 1.0 - rps["median_of_paired"],
                    "cpu_per_request_added": None if not cpu else cpu["median_of_paired"] - 1.0,
                }
            )
    return found


def contention(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How many cores other users of the machine took, on average, during the measured runs."""
    shares = [
        run["other_cpu_s"] / run["duration_s"]
        for row in rows
        for run in row["repetitions"]
        if run.get("other_cpu_s") is not None and run.get("duration_s")
    ]
    median = _median(shares)
    return {
        "median_other_cores": median,
        "max_other_cores": max(shares) if shares else None,
        "warning": (
            f"other processes used {median:.1f} cores (median) of this machine during the runs: "
            "rps ratios measure the contention more than the servers; rerun on a quiet machine"
        )
        if median is not None and median > CONTENTION_WARN_CORES
        else None,
    }


def _observed(ratio: dict[str, Any] | None) -> float | None:
    """The value a target is judged on: the median of the paired ratios."""
    return ratio["median_of_paired"] if ratio else None


def _target(name: str, requirement: str, observed: float | None, met: bool | None) -> dict:
    """One target; ``met`` is None when it was not measured."""
    return {"name": name, "requirement": requirement, "observed": observed, "met": met}


def _at_least(observed: float | None, limit: float) -> bool | None:
    return None if observed is None else observed >= limit


def _best_mlserver(rows: list[dict[str, Any]]) -> str | None:
    """The MLServer configuration with the higher rps at the MLServer target's connections."""
    found = [
        row
        for name in MLSERVER_SERIES
        if (row := _row(rows, name, MLSERVER_CONNECTIONS)) and row["rps"]
    ]
    return str(max(found, key=lambda row: row["rps"])["series"]) if found else None


def targets(rows: list[dict[str, Any]], connection_counts: list[int]) -> list[dict[str, Any]]:
    """The issue's targets, each with what was observed and whether it is met."""
    found = []
    for connections in connection_counts:
        observed = _observed(paired_ratio(rows, V2_REST, SAGEMAKER, connections, "rps"))
        found.append(
            _target(
                f"v2_rest_vs_sagemaker_rps_{connections}_connections",
                f"V2 REST rps >= {V2_VS_SAGEMAKER_MIN} x SageMaker-route rps "
                f"({connections} connection(s), same server)",
                observed,
                _at_least(observed, V2_VS_SAGEMAKER_MIN),
            )
        )
    best = _best_mlserver(rows)
    c = MLSERVER_CONNECTIONS
    rps = _observed(paired_ratio(rows, V2_REST, best, c, "rps")) if best else None
    found.append(
        _target(
            f"v2_rest_vs_mlserver_rps_{c}_connections",
            f"modelyard V2 REST rps >= {V2_VS_MLSERVER_MIN} x MLServer V2 REST rps at {c} "
            f"connections (against MLServer's faster configuration: {best})",
            rps,
            _at_least(rps, V2_VS_MLSERVER_MIN),
        )
    )
    mine, theirs = _row(rows, V2_REST, c), _row(rows, best, c) if best else None
    p99 = mine["p99_ms"] / theirs["p99_ms"] if mine and theirs else None
    found.append(
        _target(
            f"v2_rest_vs_mlserver_p99_{c}_connections",
            f"modelyard V2 REST p99 < MLServer p99 at {c} connections ({best}); "
            "observed: the ratio of the medians",
            p99,
            None if p99 is None else p99 < 1.0,
        )
    )
    for connections in connection_counts:
        ratio = _observed(paired_ratio(rows, SAGEMAKER, CORE_BEFORE, connections, "rps"))
        overhead = None if ratio is None else 1.0 - ratio
        found.append(
            _target(
                f"core_overhead_{connections}_connections",
                f"the inference core and wrapper stack cost <= {CORE_OVERHEAD_MAX:.0%} of "
                f"SageMaker-route rps against commit 329b317 ({connections} connection(s); "
                "both servers started with the same flags, no --grpc-port); "
                "observed: 1 - current/329b317",
                overhead,
                None if overhead is None else overhead <= CORE_OVERHEAD_MAX,
            )
        )
    mine_rows = [r for r in rows if r["series"] in MODELYARD_SERIES]
    errors = sum(r["errors"].get("total", 0) for r in mine_rows) if mine_rows else None
    found.append(
        _target(
            "zero_errors",
            "no modelyard request fails (any route, any client)",
            errors,
            None if errors is None else errors == 0,
        )
    )
    return found


def _fmt(value: float | None, digits: int = 1) -> str:
    """A number for the table, or a dash."""
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    """A signed percentage for the report, or a dash."""
    return "-" if value is None else f"{value * 100:+.1f}%"


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The results table, the ratios, the targets, and what could not be measured."""
    rows = report.get("results", [])
    if rows:
        table = Table(
            title="V2 serving benchmark (medians)",
            caption="busy: server + client CPU over all cores; other CPU s: CPU that processes "
            "outside the benchmark used during the run (a shared machine)",
        )
        for column in TABLE_COLUMNS:
            table.add_column(column, justify="left" if column in ("series", "client") else "right")
        for row in rows:
            table.add_row(
                row["series"],
                row["client"],
                str(row["connections"]),
                str(row["repeats"]),
                _fmt(row["rps"], 0),
                _fmt(row["p50_ms"], 2),
                _fmt(row["p99_ms"], 2),
                str(row["errors"].get("total", 0)),
                _fmt(row["cpu_us_per_request"], 0),
                _fmt(row["client_cpu_s"], 1),
                _fmt(row["cpu_busy_fraction"] * 100 if row["cpu_busy_fraction"] else None, 0) + "%",
                _fmt(row["other_cpu_s"], 1),
            )
        console.print(table)
    for ratio in report.get("ratios", []):
        where = "" if ratio.get("same_server", True) else " [different servers]"
        console.print(
            f"{ratio['metric']} {ratio['numerator']} / {ratio['denominator']} at "
            f"{ratio['connections']}: {_fmt(ratio['median_of_paired'], 3)} (median of paired), "
            f"{_fmt(ratio['of_medians'], 3)} (of medians){where}",
            markup=False,
            highlight=False,
        )
    for cost in report.get("grpc_enabled_cost", []):
        lost, added = cost["rps_lost"], cost["cpu_per_request_added"]
        console.print(
            f"enabling --grpc-port, SageMaker route at {cost['connections']}: "
            f"rps {_pct(None if lost is None else -lost)}, "
            f"server CPU per request {_pct(added)} (median of paired)",
            markup=False,
            highlight=False,
        )
    for target in report.get("targets", []):
        mark = {True: "met", False: "NOT MET", None: "not measured"}[target["met"]]
        console.print(
            f"target {target['name']}: {mark} (observed {_fmt(target['observed'], 3)})"
            f" - {target['requirement']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    warning = report.get("contention", {}).get("warning")
    if warning:
        console.print(f"WARNING: {warning}", markup=False, style="bold red")
    for name, record in report.get("servers", {}).items():
        for problem in record.get("failures", []):
            console.print(f"{name}: {str(problem).splitlines()[0]}", markup=False, style="red")
        for series, answer in record.get("answers", {}).items():
            if answer.get("matches_model") is False:
                console.print(
                    f"{series} answered {answer.get('prediction')}, the model says "
                    f"{answer.get('expected')}",
                    markup=False,
                    style="red",
                )
    for name, reason in report.get("skipped_series", {}).items():
        console.print(f"skipped {name}: {reason.splitlines()[0]}", markup=False, style="yellow")


def plot(report: dict[str, Any], path: Path) -> None:
    """Median rps and p99 per series, one panel per metric and connection count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.get("results", [])
    if not rows:
        return
    names = list(dict.fromkeys(row["series"] for row in rows))
    counts = sorted({row["connections"] for row in rows})
    colours = plt.get_cmap("tab10")
    figure, axes = plt.subplots(
        2, len(counts), figsize=(6 * len(counts), 8), squeeze=False, constrained_layout=True
    )
    for line, (metric, label) in enumerate((("rps", "requests/s"), ("p99_ms", "p99 latency ms"))):
        for column, connections in enumerate(counts):
            axis = axes[line][column]
            for index, name in enumerate(names):
                row = _row(rows, name, connections)
                if not row or row[metric] is None:
                    continue
                axis.bar(index, row[metric], 0.8, color=colours(index), label=name)
                points = [run[metric] for run in row["repetitions"] if run.get(metric)]
                axis.plot([index] * len(points), points, "k.", markersize=4)
            axis.set_xticks([])
            axis.set_title(f"{label}, {connections} connection(s)", fontsize=10)
            axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    params = report.get("parameters", {})
    figure.suptitle(
        "V2 serving: XGBoost 100 trees depth 6, 30 features, one row per request, 2 workers "
        f"({params.get('duration_s')} s x {params.get('repeats')}, medians; dots: repetitions)",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
