"""``modelyard monitor``: baselines, drift, metrics, schedules and reports of deployed models.

Each command lives in its own module (``monitor_*.py``) and is registered here.
"""

from __future__ import annotations

import typer

from modelyard.cli import (
    monitor_drift,
    monitor_metrics,
    monitor_quality,
    monitor_report,
    monitor_schedule,
)

app = typer.Typer(
    help="Watch deployed models: baselines, drift, metrics, schedules and reports.",
    no_args_is_help=True,
)

app.registered_commands += monitor_schedule.app.registered_commands
app.command("quality")(monitor_quality.quality)
app.command("metrics")(monitor_metrics.metrics)
app.command("baseline")(monitor_drift.baseline)
app.command("drift")(monitor_drift.drift)
app.command("report")(monitor_report.report)
