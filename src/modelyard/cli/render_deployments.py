"""Deployments as output: the ``deployments list`` table, the ``show`` view (plan, step
history, decision log with each check's values and window) and their JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table

from modelyard.domain.deployment_decisions import Decision
from modelyard.domain.deployments import Deployment, StepRecord
from modelyard.domain.monitors import format_duration


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
            d.reason,
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
