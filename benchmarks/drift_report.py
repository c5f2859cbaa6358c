"""The drift benchmark's figure and printed summary (benchmarks/drift.py): pure functions of
its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import drift_data


def plot(report: dict[str, Any], path: Path) -> None:
    """Time and memory side by side, and every feature's score over its threshold per tool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    my, fresh, ev = report["modelyard"], report["modelyard_fresh_process"], report["evidently"]
    ev_ok = "run_s" in ev
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.1, 1, 1.9]})
    blue, grey = "#1f77b4", "#8c8c8c"

    ax = axes[0]
    labels = ["baseline\nsketch", "drift step: sketch +\ntests / Evidently report", "read\nParquet"]
    mine = [
        my["baseline_sketch"]["wall_s"],
        my["step"]["wall_s"]["median"],
        my["read_current_parquet_s"]["median"],
    ]
    theirs = [None, ev.get("run_s"), ev.get("read_s")]
    xs = range(len(labels))
    bars = ax.bar([x - 0.2 for x in xs], mine, 0.4, color=blue, label="modelyard")
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    if ev_ok:
        bars = ax.bar(
            [x + 0.2 for x, v in zip(xs, theirs, strict=True) if v is not None],
            [v for v in theirs if v is not None],
            0.4,
            color=grey,
            label="Evidently (report)",
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    target_s = report["analysis"]["targets"]["step_s"]["target"]
    ax.axhline(target_s, color="red", lw=0.8, ls="--", label=f"target {target_s:g} s")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("seconds (log scale)")
    ax.set_title("time")
    ax.legend(fontsize=8)

    ax = axes[1]
    labels = ["step\n(RSS delta)", "step\n(tracemalloc)", "whole process\n(VmHWM)"]
    mine = [
        fresh.get("memory", {}).get("step_delta_mib"),
        my["memory"]["tracemalloc_peak_mib"],
        fresh.get("memory", {}).get("process_peak_vmhwm_mib"),
    ]
    theirs = [
        ev.get("memory", {}).get("step_delta_mib"),
        None,
        ev.get("memory", {}).get("process_peak_vmhwm_mib"),
    ]
    xs = range(len(labels))
    for offset, values, colour, name in (
        (-0.2, mine, blue, "modelyard"),
        (0.2, theirs, grey, "Evidently"),
    ):
        kept = [(x + offset, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if kept:
            bars = ax.bar([k[0] for k in kept], [k[1] for k in kept], 0.4, color=colour, label=name)
            ax.bar_label(bars, fmt="%.0f", fontsize=8)
    target_mib = report["analysis"]["targets"]["step_mib"]["target"]
    ax.axhline(target_mib, color="red", lw=0.8, ls="--", label=f"target {target_mib:g} MiB")
    ax.set_xticks(list(xs), labels)
    ax.set_yscale("log")
    ax.set_ylabel("MiB (log scale)")
    ax.set_title("peak memory (fresh processes)")
    ax.legend(fontsize=8)

    ax = axes[2]
    names = [f["name"] for f in report["data"]["features"]]
    mine_scores = [report["modelyard"]["features"][n]["score_over_threshold"] for n in names]
    ax.scatter(range(len(names)), mine_scores, color=blue, label="modelyard", zorder=3, s=18)
    if ev_ok:
        cols = ev["columns"]
        ev_scores = [cols[n]["score"] / cols[n]["threshold"] for n in names]
        ax.scatter(range(len(names)), ev_scores, color=grey, marker="s", label="Evidently", s=16)
    ax.axhline(1.0, color="red", lw=0.8, ls="--", label="threshold")
    ax.axvspan(-0.5, len(drift_data.SHIFTED) - 0.5, color="orange", alpha=0.12, label="shifted")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("score / threshold (flagged at >= 1)")
    first = report["modelyard"]["features"][names[0]]
    title = (
        f"per feature, default tests: modelyard ({first['test']} - noise) / {first['threshold']:g}"
    )
    if ev_ok:
        column = ev["columns"][names[0]]
        title += f"; Evidently {column['method']} / {column['threshold']:g}"
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper right")

    machine = report["machine"]
    fig.suptitle(
        f"drift: {report['parameters']['rows']:,} rows x {drift_data.N_FEATURES} features vs a "
        f"baseline of the same size ({machine['nproc']} cores, load "
        f"{machine['load_average_at_start'][0]:.1f} at start)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_summary(report: dict[str, Any]) -> None:
    my, fresh, ev, an = (
        report["modelyard"], report["modelyard_fresh_process"], report["evidently"],
        report["analysis"],
    )  # fmt: skip
    step, memory, fresh_memory = my["step"]["wall_s"], my["memory"], fresh.get("memory", {})
    print()
    print(f"rows: {report['parameters']['rows']:,} x {drift_data.N_FEATURES}")
    print(f"modelyard baseline sketch: {my['baseline_sketch']['wall_s']:.2f} s")
    print(
        f"modelyard sketch+tests: median {step['median']:.2f} s (min {step['min']:.2f}); "
        f"memory {_fmt(memory['step_delta_mib'], '.0f')} MiB RSS delta, "
        f"{memory['tracemalloc_peak_mib']:.0f} MiB tracemalloc"
    )
    print(
        f"modelyard in a fresh process: step {_fmt(fresh.get('step_s'), '.2f')} s, "
        f"{_fmt(fresh_memory.get('step_delta_mib'), '.0f')} MiB RSS delta, process peak "
        f"{_fmt(fresh_memory.get('process_peak_vmhwm_mib'), '.0f')} MiB (getrusage "
        f"{_fmt(fresh_memory.get('process_peak_mib'), '.0f')})"
        + (f" ({fresh['error'][-300:]})" if "error" in fresh else "")
    )
    print(f"modelyard read Parquet: {my['read_current_parquet_s']['median']:.2f} s")
    if "run_s" in ev:
        print(
            f"Evidently report: {ev['run_s']:.1f} s; memory "
            f"{_fmt(ev['memory']['step_delta_mib'], '.0f')} MiB RSS delta, process peak "
            f"{ev['memory']['process_peak_vmhwm_mib']:.0f} MiB (getrusage "
            f"{ev['memory']['process_peak_mib']:.0f}); read {ev['read_s']:.2f} s"
        )
    else:
        print(f"Evidently: {ev.get('error', 'skipped')}")
    speed = an["speed_ratio_evidently_over_modelyard_step"]
    print(
        f"ratios (Evidently / modelyard): speed {_fmt(speed, '.0f')}x, memory (step) "
        f"{_fmt(an['memory_ratio_step_delta'], '.1f')}x, memory (process) "
        f"{_fmt(an['memory_ratio_process_peak'], '.1f')}x"
    )
    for tool in ("modelyard", "evidently"):
        verdict = report["verdicts"].get(tool)
        if verdict:
            print(
                f"{tool}: flagged {verdict['flagged']}; missed {verdict['shifted_missed']}; "
                f"false alarms {verdict['unshifted_flagged']}"
            )
