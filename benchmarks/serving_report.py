"""The serving benchmark's report: ratios, the issue's targets, and the printed table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# The targets of issue 13 (compiled tree inference), 2 workers each.
RPS_RATIO_1_CONNECTION = 1.8  # modelyard / reference
CPU_US_1_CONNECTION = 300.0  # server CPU per request, at most
RPS_RATIO_64_CONNECTIONS = 4.0  # modelyard / reference
RPS_RATIO_EMPTY_64_CONNECTIONS = 0.9  # modelyard / the empty Starlette server
P99_LIMIT_MS = 12.0
TARGET_WORKERS = 2
TARGET_CONNECTIONS = 64

# The serving core's earlier targets (before compiled inference), kept for comparison.
EARLIER_RPS_RATIO_1_CONNECTION = 0.9
EARLIER_RPS_RATIO_64_CONNECTIONS = 3.0
EARLIER_P99_LIMIT_MS = 20.0

TABLE_COLUMNS = (
    "server", "predictor", "w", "conns", "rps", "p50 ms", "p99 ms", "errors", "CPU us/req",
    "busy", "other CPU s", "/ref rps",
)  # fmt: skip


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Result rows by (server, workers, connections)."""
    return {(r["server"], r["workers"], r["connections"]): r for r in rows}


def ratio_table(
    rows: list[dict[str, Any]], numerator: str, denominator: str, metric: str
) -> dict[str, float]:
    """``numerator``'s metric over ``denominator``'s at each (workers, connections) both ran."""
    by = _by_key(rows)
    table = {}
    for (server, workers, connections), row in sorted(by.items()):
        other = by.get((denominator, workers, connections))
        if server == numerator and other and row[metric] and other[metric]:
            table[f"workers={workers},connections={connections}"] = row[metric] / other[metric]
    return table


def ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The ratios the issue asks for, plus each server's share of the empty server's rps."""
    at_64 = [r for r in rows if r["connections"] == TARGET_CONNECTIONS]
    return {
        "rps modelyard/reference": ratio_table(rows, "modelyard", "reference", "rps"),
        "p99 modelyard/reference at 64 connections": ratio_table(
            at_64, "modelyard", "reference", "p99_ms"
        ),
        "rps modelyard/empty": ratio_table(rows, "modelyard", "empty", "rps"),
        "rps reference/empty": ratio_table(rows, "reference", "empty", "rps"),
        "rps modelyard-native/reference": ratio_table(rows, "modelyard-native", "reference", "rps"),
        "rps modelyard/modelyard-native": ratio_table(rows, "modelyard", "modelyard-native", "rps"),
        "cpu per request modelyard/modelyard-native": ratio_table(
            rows, "modelyard", "modelyard-native", "cpu_us_per_request"
        ),
    }


def _target(
    name: str, requirement: str, observed: float | None, limit: float, *, at_most: bool = False
) -> dict[str, Any]:
    """One target; ``met`` is None when it was not measured."""
    met = None
    if observed is not None:
        met = observed <= limit if at_most else observed >= limit
    return {"name": name, "requirement": requirement, "observed": observed, "met": met}


def targets(rows: list[dict[str, Any]], servers: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets for modelyard (its default predictor), each with what was observed
    and whether it is met; and whether the compiled predictor is what served it."""
    found = _issue_targets(rows)
    served = servers.get("modelyard", {}).get("served_predictors", {}).get(str(TARGET_WORKERS))
    kinds = served["kinds"] if served else None
    found.append(
        {
            "name": "compiled_predictor_served",
            "requirement": f"every modelyard worker ({TARGET_WORKERS} workers) served the "
            "variant with the compiled predictor (what the targets above measure)",
            "observed": None if served is None else "+".join(kinds or []) or "unknown",
            "met": None
            if served is None
            else kinds == ["compiled"] and served["workers_seen"] >= TARGET_WORKERS,
        }
    )
    return found


def _issue_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = ratios(rows)
    busy = f"{TARGET_CONNECTIONS} connections, {TARGET_WORKERS} workers"
    one = f"1 connection, {TARGET_WORKERS} workers"
    by = _by_key(rows)
    single = by.get(("modelyard", TARGET_WORKERS, 1))
    loaded = by.get(("modelyard", TARGET_WORKERS, TARGET_CONNECTIONS))
    key_one = f"workers={TARGET_WORKERS},connections=1"
    key_busy = f"workers={TARGET_WORKERS},connections={TARGET_CONNECTIONS}"
    modelyard_rows = [r for r in rows if r["server"] == "modelyard"]
    return [
        _target(
            f"rps_1_connection_{TARGET_WORKERS}_workers",
            f"modelyard rps >= {RPS_RATIO_1_CONNECTION} x reference rps ({one} each)",
            table["rps modelyard/reference"].get(key_one),
            RPS_RATIO_1_CONNECTION,
        ),
        _target(
            f"cpu_per_request_1_connection_{TARGET_WORKERS}_workers",
            f"modelyard server CPU per request <= {CPU_US_1_CONNECTION:.0f} us ({one})",
            single["cpu_us_per_request"] if single else None,
            CPU_US_1_CONNECTION,
            at_most=True,
        ),
        _target(
            f"rps_{TARGET_CONNECTIONS}_connections_{TARGET_WORKERS}_workers",
            f"modelyard rps >= {RPS_RATIO_64_CONNECTIONS} x reference rps ({busy} each)",
            table["rps modelyard/reference"].get(key_busy),
            RPS_RATIO_64_CONNECTIONS,
        ),
        _target(
            f"rps_vs_empty_{TARGET_CONNECTIONS}_connections_{TARGET_WORKERS}_workers",
            f"modelyard rps >= {RPS_RATIO_EMPTY_64_CONNECTIONS} x the empty server's rps "
            f"({busy} each)",
            table["rps modelyard/empty"].get(key_busy),
            RPS_RATIO_EMPTY_64_CONNECTIONS,
        ),
        _target(
            f"p99_{TARGET_CONNECTIONS}_connections_{TARGET_WORKERS}_workers",
            f"modelyard p99 <= {P99_LIMIT_MS} ms ({busy})",
            loaded["p99_ms"] if loaded else None,
            P99_LIMIT_MS,
            at_most=True,
        ),
        _target(
            "zero_errors",
            "no modelyard request fails (connect, read, write, timeout, non-2xx)",
            sum(r["errors"]["total"] for r in modelyard_rows) if modelyard_rows else None,
            0,
            at_most=True,
        ),
    ]


def earlier_targets(rows: list[dict[str, Any]], workers: Sequence[int]) -> list[dict[str, Any]]:
    """The serving core's earlier targets (before compiled inference), for comparison."""
    rps_ratio = ratios(rows)["rps modelyard/reference"]
    busy = f"{TARGET_CONNECTIONS} connections, {TARGET_WORKERS} workers"
    found = [
        _target(
            f"rps_1_connection_{count}_workers",
            f"modelyard rps >= {EARLIER_RPS_RATIO_1_CONNECTION} x reference rps "
            f"(1 connection, {count} worker(s) each)",
            rps_ratio.get(f"workers={count},connections=1"),
            EARLIER_RPS_RATIO_1_CONNECTION,
        )
        for count in workers
    ]
    found.append(
        _target(
            f"rps_{TARGET_CONNECTIONS}_connections_{TARGET_WORKERS}_workers",
            f"modelyard rps >= {EARLIER_RPS_RATIO_64_CONNECTIONS} x reference rps ({busy} each)",
            rps_ratio.get(f"workers={TARGET_WORKERS},connections={TARGET_CONNECTIONS}"),
            EARLIER_RPS_RATIO_64_CONNECTIONS,
        )
    )
    row = _by_key(rows).get(("modelyard", TARGET_WORKERS, TARGET_CONNECTIONS))
    found.append(
        _target(
            f"p99_{TARGET_CONNECTIONS}_connections_{TARGET_WORKERS}_workers",
            f"modelyard p99 <= {EARLIER_P99_LIMIT_MS} ms ({busy})",
            row["p99_ms"] if row else None,
            EARLIER_P99_LIMIT_MS,
            at_most=True,
        )
    )
    modelyard_rows = [r for r in rows if r["server"] == "modelyard"]
    found.append(
        _target(
            "zero_errors",
            "no modelyard request fails (connect, read, write, timeout, non-2xx)",
            sum(r["errors"]["total"] for r in modelyard_rows) if modelyard_rows else None,
            0,
            at_most=True,
        )
    )
    return found


def _fmt(value: float | None, digits: int = 1) -> str:
    """A number for the table, or a dash."""
    return "-" if value is None else f"{value:,.{digits}f}"


def _observed(value: float | str | None) -> str:
    """A target's observed value: a number to two places, or a word as it is."""
    return value if isinstance(value, str) else _fmt(value, 2)


def _predictor_cell(predictor: str | None) -> str:
    """Short predictor name for the table (the JSON keeps the whole one)."""
    if predictor is None:
        return "-"
    return "inplace_predict" if predictor.startswith("xgboost") else predictor


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The results table, then targets, failures and mismatched answers."""
    rows = report.get("results", [])
    if rows:
        vs_reference = _by_key(rows)
        table = Table(
            title="serving benchmark (medians)",
            caption="busy: server + wrk CPU over all cores; other CPU s: CPU other processes "
            "used during the run (a shared machine)",
        )
        for column in TABLE_COLUMNS:
            left = column in ("server", "predictor")
            table.add_column(column, justify="left" if left else "right", no_wrap=left)
        for row in rows:
            reference = vs_reference.get(("reference", row["workers"], row["connections"]))
            table.add_row(
                row["server"],
                _predictor_cell(row.get("predictor")),
                str(row["workers"]),
                str(row["connections"]),
                _fmt(row["rps"], 0),
                _fmt(row["p50_ms"], 2),
                _fmt(row["p99_ms"], 2),
                str(row["errors"]["total"]),
                _fmt(row["cpu_us_per_request"], 0),
                _fmt(row["cpu_busy_fraction"] * 100, 0) + "%",
                _fmt(row["other_cpu_s"], 1),
                _fmt(row["rps"] / reference["rps"], 2) if reference else "-",
            )
        console.print(table)
    for target in report.get("targets", []):
        mark = {True: "met", False: "NOT MET", None: "not measured"}[target["met"]]
        console.print(
            f"target {target['name']}: {mark} (observed {_observed(target['observed'])})"
            f" - {target['requirement']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    soak = report.get("soak")
    if soak and soak.get("windows"):
        console.print(
            f"soak: p99 first {_fmt(soak['p99_first_ms'], 2)} ms, last "
            f"{_fmt(soak['p99_last_ms'], 2)} ms, max {_fmt(soak['p99_max_ms'], 2)} ms, "
            f"stable={soak['p99_stable']}, errors {soak['errors']}",
            markup=False,
        )
    for name, record in report["servers"].items():
        problems = [record["setup_error"]] if "setup_error" in record else []
        problems += [f"{f['workers']} worker(s): {f['error']}" for f in record["failures"]]
        for workers, served in record.get("served_predictors", {}).items():
            reasons = sorted(
                {
                    str((p or {}).get("reason"))
                    for variants in served["by_worker"].values()
                    for p in variants.values()
                }
            )
            console.print(
                f"{name} with {workers} worker(s): {served['workers_seen']} worker(s) seen; "
                f"{'; '.join(reasons) or 'no predictor reported'}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        problems += [
            f"{workers} worker(s) answered {answer['prediction']}, model says {answer['expected']}"
            for workers, answer in record["answers"].items()
            if answer["matches_model"] is False
        ]
        for problem in problems:
            console.print(f"{name}: {problem.splitlines()[0]}", markup=False, style="red")
