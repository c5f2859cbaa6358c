"""The numbers of ``guardrails_cost.py``: each round's guarded run against its plain run, the
medians, and the summary it prints (the method is in ``guardrails_cost.py``'s docstring)."""

from __future__ import annotations

import statistics
from typing import Any

from monitoring_cost import quiet
from verdict import describe, verdict

TARGET_COST = 0.03  # at most 3 % (issue 12), the shadow's own predictions not counted
#: ``verdict``'s keys for rows without costs (runs that served nothing).
NO_VERDICT = {"cost": None, "cost_interval": None, "interval_confidence": None,
              "verdict": "undecided"}  # fmt: skip
MEDIANS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "shadow_thread_cpu_us_per_request",
           "predict_thread_cpu_us_per_request", "workers_cpu_us_per_request",
           "scheduler_cpu_us_per_request", "rest_cpu_us_per_request", "other_cpu_s",
           "idle_peer_cpu_s")  # fmt: skip


def compare_round(guarded: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    """One round's ratios (None where a run served no request)."""
    g_cpu, p_cpu = guarded["cpu_us_per_request"], plain["cpu_us_per_request"]
    shadow = guarded["shadow_thread_cpu_us_per_request"]
    usable = g_cpu is not None and bool(p_cpu)
    excluding = (g_cpu - shadow) / p_cpu - 1 if usable else None
    return {
        "round": guarded["round"],
        "rps_ratio": guarded["rps"] / plain["rps"] if plain["rps"] else None,
        "cost_excluding_shadow": excluding,
        "cost_including_shadow": g_cpu / p_cpu - 1 if usable else None,
        "cpu_us_per_request_added_excluding_shadow": g_cpu - shadow - p_cpu if usable else None,
        "quiet": quiet(guarded) and quiet(plain),
    }


def _part(rounds: list[dict[str, Any]], chosen: set[int]) -> dict[str, Any]:
    """Another server against the plain one: medians over the rounds the main figures use."""
    used = [r for r in rounds if r["round"] in chosen]
    keys = ("rps_ratio", "cost_excluding_shadow", "cpu_us_per_request_added_excluding_shadow")
    return {key: _median(used, key) for key in keys} | {"per_round": rounds}


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def summarise(connections: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per server, and the guarded server against the plain one round by round;
    rounds where either run shared the machine with other work are left out of the medians
    (unless fewer than two are left)."""
    rounds = [compare_round(g, p) for g, p in zip(runs["guarded"], runs["plain"], strict=True)]
    parts = {
        name: [compare_round(a, p) for a, p in zip(rs, runs["plain"], strict=True)]
        for name, rs in runs.items()
        if name not in ("guarded", "plain")
    }
    calm = [r for r in rounds if r["quiet"]]
    used = calm if len(calm) >= 2 else rounds
    chosen = {r["round"] for r in used}
    medians = {
        name: {m: _median([r for r in rs if r["round"] in chosen], m) for m in MEDIANS}
        for name, rs in runs.items()
    }
    cost = _median(used, "cost_excluding_shadow")
    costs = [r["cost_excluding_shadow"] for r in used if r["cost_excluding_shadow"] is not None]
    guarded = [r for r in runs["guarded"] if r["round"] in chosen]
    return {
        "connections": connections,
        "rounds_used": sorted(chosen),
        "quiet_rounds": [r["round"] for r in calm],
        "rps_ratio": _median(used, "rps_ratio"),
        "cost_excluding_shadow": cost,
        "implied_rps_ratio": 1 / (1 + cost) if cost is not None else None,
        "cost_including_shadow": _median(used, "cost_including_shadow"),
        "cpu_us_per_request_added_excluding_shadow": _median(
            used, "cpu_us_per_request_added_excluding_shadow"
        ),
        "shadow_thread_cpu_s": sum(r["shadow_thread_cpu_s"] for r in guarded),
        "target": f"cost_excluding_shadow <= {TARGET_COST:.0%}",
        # The median alone; ``verdict`` says whether the rounds' spread allows a reading.
        "target_met": cost is not None and cost <= TARGET_COST,
        **(verdict(costs, TARGET_COST) if costs else NO_VERDICT),
        "medians": medians,
        "parts": {name: _part(rs, chosen) for name, rs in parts.items()},
        "errors": {n: sum(r["errors"]["total"] for r in rs) for n, rs in runs.items()},
        "per_round": rounds,
        "runs": runs,
    }


def costs_in(row: dict[str, Any]) -> bool:
    """Whether a row has costs to read a verdict from (a run that served nothing has none)."""
    return row["cost_interval"] is not None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_summary(report: dict[str, Any]) -> None:
    """The table: medians per server and connection count, the ratios, the shadow's counts."""
    rows = report.get("results", [])
    if rows:
        print(f"{'c':>3} {'server':<11} {'rps':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu us/req':>10} "
              f"{'shadow us/req':>13} {'workers':>7} {'scheduler':>9}")  # fmt: skip
    for row in rows:
        for name, m in row["medians"].items():
            print(
                f"{row['connections']:>3} {name:<11} {_fmt(m['rps'], '8.0f')} "
                f"{_fmt(m['p50_ms'], '7.2f')} {_fmt(m['p99_ms'], '7.2f')} "
                f"{_fmt(m['cpu_us_per_request'], '10.0f')} "
                f"{_fmt(m['shadow_thread_cpu_us_per_request'], '13.0f')} "
                f"{_fmt(m['workers_cpu_us_per_request'], '7.0f')} "
                f"{_fmt(m['scheduler_cpu_us_per_request'], '9.1f')}"
            )
        cost = row["cost_excluding_shadow"]
        print(
            f"    c={row['connections']}: rps ratio {_fmt(row['rps_ratio'], '.3f')}; cost "
            f"excluding the shadow's predictions {_fmt(cost and cost * 100, '+.1f')} % (CPU; "
            f"implied rps ratio {_fmt(row['implied_rps_ratio'], '.3f')}), including them "
            f"{_fmt(row['cost_including_shadow'] and row['cost_including_shadow'] * 100, '+.1f')}"
            f" %; rounds {row['rounds_used']} (quiet {row['quiet_rounds']}); errors "
            f"{row['errors']}"
        )
        print(f"    c={row['connections']}: target " + (describe(row) if costs_in(row) else "-"))
        for name, part in row["parts"].items():
            cost = part["cost_excluding_shadow"]
            print(
                f"    c={row['connections']}: {name}: rps ratio {_fmt(part['rps_ratio'], '.3f')};"
                f" CPU cost {_fmt(cost and cost * 100, '+.1f')} %"
            )
    for check in report.get("shadow_check", []):
        print(
            f"shadow at c={check['connections']}: {check['shadow_predictions_per_s']:.0f} "
            f"predictions/s, {_fmt(check['shadow_cpu_us_per_prediction'], '.0f')} CPU "
            f"us/prediction, {check['shadow_dropped']:.0f} copies dropped; canary share "
            f"{_fmt(check['canary_share'], '.3f')} (metrics-on check run)"
        )
    after = report.get("deployment_after_rounds")
    if after:
        print(f"deployment after the rounds: {after['state']} at {after['current_step']}")
    if "error" in report:
        print(f"error: {report['error']}")
