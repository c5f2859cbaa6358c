"""Deployments as output: the ``deployments list`` table, the ``show`` view (plan, step
history, decision log with each check's values and window), the ``compare`` view of a shadow
against production, and their JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from modelyard.domain.deployment_decisions import Decision
from modelyard.domain.deployments import Deployment, StepRecord
from modelyard.domain.drift import FeatureDrift
from modelyard.domain.monitors import format_duration
from modelyard.domain.shadow_comparison import (
    Agreement,
    ComparisonStatus,
    Differences,
    ServingComparison,
    ShadowComparison,
)


def _at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def step_text(d: Deployment) -> str:
    """``2/4 shift 20%``: where a deployment stands."""
    return f"{d.step + 1}/{len(d.plan.steps)} {d.current.label}"


def deployments_table(found: Iterable[Deployment]) -> Table:
    """The ``deployments list`` table, newest first."""
    table = Table(title="Deployments")
    for column in ("id", "endpoint", "strategy", "state", "step", "started (UTC)"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold", min_width=24)
    for d in found:
        table.add_row(
            str(d.id),
            d.endpoint,
            d.plan.strategy.value,
            d.state.value,
            step_text(d),
            _at(d.started_at),
            Text(d.reason),  # quotes names (features, alarms' metrics) that may hold '['
        )
    return table


def deployment_dict(
    d: Deployment, steps: Sequence[StepRecord], decisions: Sequence[Decision]
) -> dict[str, Any]:
    """``show --json``: the deployment with its step history and decision log."""
    data = d.to_dict()
    data["history"] = [s.to_dict() for s in steps]
    data["decisions"] = [x.to_dict() for x in decisions]
    return data


def deployment_detail(
    d: Deployment, steps: Sequence[StepRecord], decisions: Sequence[Decision]
) -> str:
    """``show``: the plan, where it stands, the steps as they happened and every decision."""
    plan = d.plan
    target = ", ".join(
        f"{v.name}={v.model_ref}"
        + (f" (as {d.served_names[v.name]})" if d.served_names[v.name] != v.name else "")
        for v in d.target
    )
    lines = [
        f"Deployment {d.id} of {d.endpoint}",
        f"  state     {d.state.value}: {d.reason}",
        f"  strategy  {plan.strategy.value}, at most {format_duration(plan.max_duration)}",
        f"  new       {target} (from config {d.source_config})",
        f"  step      {step_text(d)}, since {_at(d.step_started_at)}",
        f"  alarms    {', '.join(plan.alarms) or '-'}",
        f"  analysis  at least {plan.analysis.min_requests} requests a side; error rate "
        f"p < {plan.analysis.alpha:g} fails; p99 over x{plan.analysis.max_latency_ratio:g} "
        f"(and {plan.analysis.latency_floor_ms:g} ms) fails",
        "  steps",
    ]
    done = {s.index: s for s in steps}
    for index, planned in enumerate(plan.steps):
        hold = f" for {format_duration(planned.hold)}" if planned.hold else ""
        record = done.get(index)
        if record is None:
            how = "-"
        else:
            how = f"config {record.config}, {_at(record.started_at)}"
            how += f" → {_at(record.ended_at)} {record.outcome}" if record.ended_at else " (now)"
        lines.append(f"    {index + 1}. {planned.label}{hold}: {how}")
    lines.append("  decisions")
    for x in decisions:
        lines.append(f"    {_at(x.at)}  {x.action.value}  {x.reason}  [{x.actor}]")
        if x.window_start is not None:
            lines.append(f"      window {_at(x.window_start)} → {_at(x.window_end)}")
        for check in x.checks:
            values = ", ".join(f"{k}={_value(v)}" for k, v in check.values.items())
            lines.append(f"      {check.verdict.value:<12} {check.name}: {check.detail}")
            if values:
                lines.append(f"      {'':<12} {values}")
    return "\n".join(lines)


def decision_line(x: Decision) -> str:
    """One line per decision, as the controller prints them."""
    return f"{_at(x.at)} deployment {x.deployment}: {x.action.value}: {x.reason}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def comparison_text(c: ShadowComparison) -> str:
    """``deployments compare``: a shadow against production, section by section."""
    production = ", ".join(c.production) or "-"
    lines = [
        f"Shadow {c.shadow} ({c.shadow_model}) against production {production} of {c.endpoint}",
        f"  window        {_at(c.since)} → {_at(c.until)} UTC",
        f"  status        {c.status.value}"
        + (f" ({c.config.min_pairs} pairs needed)" if c.status is not ComparisonStatus.OK else ""),
        f"  captured      production {c.production_rows} rows, shadow {c.shadow_rows} rows; "
        f"{c.pairs} pairs by inference id",
    ]
    if c.agreement is not None:
        lines.extend(_agreement_lines(c.agreement))
    if c.differences is not None:
        lines.extend(_differences_lines(c.differences))
    if c.task is None:
        lines.append("  predictions   no pairs: nothing to compare")
    if c.distribution is not None:
        lines.append(f"  distribution  {_distribution_text(c.distribution)}")
    lines.extend(_serving_lines(c.serving))
    scored = "both sides scored on them" if c.labelled else "none yet"
    lines.append(f"  quality       {c.labelled} labelled pairs: {scored}")
    for point in c.quality:
        values = ", ".join(f"{k} {_number(v)}" for k, v in point.metrics.items() if v is not None)
        lines.append(
            f"    {point.variant:<12} {point.model:<16} {point.rows:>6} rows  "
            f"{point.status.value:<17} {values or '-'}"
        )
    if c.notes:
        lines.append("  notes")
        lines.extend(f"    - {note}" for note in c.notes)
    return "\n".join(lines)


def _agreement_lines(a: Agreement) -> list[str]:
    rate = "-" if a.rate is None else f"{a.rate:.2%}"
    lines = [
        f"  agreement     {rate} ({a.agreed} of {a.compared} pairs predict the same class"
        + (f"; {a.unreadable} unreadable" if a.unreadable else "")
        + ")"
    ]
    if a.disagreements:
        lines.append("  disagreements production → shadow")
        lines.extend(
            f"    {p.production} → {p.shadow}: {p.count}"
            + ("" if p.share is None else f" ({p.share:.2%})")
            for p in a.disagreements
        )
    return lines


def _differences_lines(d: Differences) -> list[str]:
    unread = f"; {d.unreadable} unreadable" if d.unreadable else ""
    lines = [f"  differences   shadow - production over {d.compared} pairs{unread}"]
    if d.mean is None:
        return lines
    within = "-" if d.within_tolerance is None else f"{d.within_tolerance:.2%}"
    lines += [
        f"    mean {_number(d.mean)}, mean |diff| {_number(d.mean_abs)}, |diff| p50 "
        f"{_number(d.p50_abs)}, p90 {_number(d.p90_abs)}, p99 {_number(d.p99_abs)}, max "
        f"{_number(d.max_abs)}",
        f"    {within} within {d.rel_tolerance:.2%} of production (or {d.abs_tolerance:g})",
    ]
    return lines


def _distribution_text(f: FeatureDrift) -> str:
    effect = "-" if f.effect is None else f"{f.effect:.4g}"
    p = "" if f.p_value is None else f", p={f.p_value:.2g}"
    others = ", ".join(f"{s.test} {s.effect:.4g}" for s in f.stats if s.test != f.test)
    return f"{f.test} {effect} (threshold {f.threshold:g}{p}): {f.verdict.value}" + (
        f"; also {others}" if others else ""
    )


def _serving_lines(s: ServingComparison) -> list[str]:
    lines = ["  serving       requests  errors  error rate    p50 ms    p99 ms"]
    for label, side in (("production", s.production), ("shadow", s.shadow)):
        rate = "-" if side.error_rate is None else f"{side.error_rate:.2%}"
        lines.append(
            f"    {label:<10} {side.requests:>9} {side.errors:>7} {rate:>11} "
            f"{_number(side.latency_p50_ms):>9} {_number(side.latency_p99_ms):>9}"
        )
    if s.error_rate_p_value is not None:
        lines.append(
            f"    shadow's error rate against production's: z={_number(s.error_rate_z)}, "
            f"one-sided p={s.error_rate_p_value:.2g} (small: the shadow fails more)"
        )
    if s.latency_p99_ratio is not None:
        lines.append(f"    shadow p99 / production p99: x{s.latency_p99_ratio:.2f}")
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
