"""Deployments as output: the ``deployments list`` table shows each deployment's reason as
written, whatever characters the names it quotes hold."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from modelyard.cli.render_deployments import deployments_table
from modelyard.domain import Variant
from modelyard.domain.deployments import Deployment, DeploymentState
from modelyard.services.deployment_plan import plan_rollout

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _rolled_back(reason: str) -> Deployment:
    return Deployment(
        id=7,
        endpoint="churn-api",
        plan=plan_rollout("linear", step_size=50, alarms=["spend"]),
        source_config=1,
        target=(Variant("main", "churn", 2, 1.0),),
        served_names={"main": "main.next"},
        state=DeploymentState.ROLLED_BACK,
        step=0,
        config=None,
        pending=None,
        reason=reason,
        started_at=T0,
        updated_at=T0,
        step_started_at=T0,
    )


def test_a_reason_quoting_brackets_is_shown_as_written() -> None:
    # Feature names are the model's, any text: an alarm on one puts it in the reason. Rich
    # read '[/usd]' as a closing tag (MarkupError: the command failed) and '[batch, 4]' as a
    # style (the text vanished).
    reasons = [
        "alarm spend is in ALARM: input_mean.amount[/usd] mean > 100 for 1 of 1 windows of 5m",
        "servers failed: expected shape [batch, 4]",
    ]
    console = Console(record=True, width=400, color_system=None)
    console.print(deployments_table(_rolled_back(r) for r in reasons))
    shown = console.export_text()
    for reason in reasons:
        assert reason in shown, shown
