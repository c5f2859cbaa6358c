"""The deployment options of ``modelyard endpoints update``: ``--strategy`` and SageMaker's
guardrail fields (``--canary-size 10%``, ``--step 20%``, ``--wait 5m``, ``--bake 10m``,
``--max-duration 2h``, ``--alarm NAME``), parsed into the deployment service's arguments.
Which options a strategy takes, and every limit, is the service's to say."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from modelyard.domain.deployments import Strategy
from modelyard.domain.durations import parse_duration
from modelyard.domain.numbers import parse_percent_text
from modelyard.errors import InvalidInput

_STRATEGIES = "|".join(s.value for s in Strategy)
_PANEL = "Deployment (with --strategy)"

StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        metavar=_STRATEGIES,
        help="Shift traffic to the new config in watched steps: canary (a small share first, "
        "then the rest), linear (equal steps), blue-green (all at once, then a bake with the "
        "old config kept loaded), all-at-once (today's update). `modelyard serve` or "
        "`modelyard controller` moves it on; see `modelyard deployments`.",
        rich_help_panel=_PANEL,
    ),
]
CanaryOpt = Annotated[
    str | None,
    typer.Option(
        "--canary-size",
        metavar="PERCENT",
        help="canary: the first step (default 10%).",
        rich_help_panel=_PANEL,
    ),
]
StepOpt = Annotated[
    str | None,
    typer.Option(
        "--step",
        metavar="PERCENT",
        help="linear: each step; must divide 100 (default 20%).",
        rich_help_panel=_PANEL,
    ),
]
WaitOpt = Annotated[
    str | None,
    typer.Option(
        "--wait",
        metavar="DURATION",
        help="How long each step is held and watched (default 5m).",
        rich_help_panel=_PANEL,
    ),
]
BakeOpt = Annotated[
    str | None,
    typer.Option(
        "--bake",
        metavar="DURATION",
        help="After the last shift, before the old config is retired (default 10m; 0: none).",
        rich_help_panel=_PANEL,
    ),
]
MaxDurationOpt = Annotated[
    str | None,
    typer.Option(
        "--max-duration",
        metavar="DURATION",
        help="Roll back if not done by then (default: the waits and bake plus 1h).",
        rich_help_panel=_PANEL,
    ),
]
AlarmOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--alarm",
        metavar="NAME",
        help="Roll back when this alarm is in ALARM during a step or the bake. Repeatable.",
        rich_help_panel=_PANEL,
    ),
]
MinRequestsOpt = Annotated[
    int | None,
    typer.Option(
        "--min-requests",
        metavar="N",
        help="Requests each side needs in a step's window; fewer is INCONCLUSIVE and pauses "
        "the deployment (default 100).",
        rich_help_panel=_PANEL,
    ),
]


def percent(text: str | None, option: str) -> float | None:
    """``10%`` or ``10`` → 10.0; anything else is a usage error naming the option."""
    if text is None:
        return None
    try:
        return parse_percent_text(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected a percentage such as 10%, got {text!r}", param_hint=f"'{option}'"
        ) from None


def duration(text: str | None, option: str) -> timedelta | None:
    """``5m`` → 5 minutes, ``0`` (or ``0s``, ``0h`` …) → zero: the deployment service says
    where zero is allowed, naming the option's field; text that is no duration is a usage
    error naming the option."""
    if text is None:
        return None
    try:
        return parse_duration(text, zero_ok=True)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message, param_hint=f"'{option}'") from None


def rollout_options(
    strategy: str | None,
    canary_size: str | None,
    step: str | None,
    wait: str | None,
    bake: str | None,
    max_duration: str | None,
    alarm: list[str] | None,
    min_requests: int | None,
) -> dict[str, Any] | None:
    """The deployment service's keyword arguments; None without ``--strategy`` (a plain
    update). Deployment options without ``--strategy`` are a usage error."""
    if strategy is None:
        given = [canary_size, step, wait, bake, max_duration, min_requests]
        if alarm or any(o is not None for o in given):
            raise typer.BadParameter(
                "the deployment options (--canary-size, --step, --wait, --bake, "
                "--max-duration, --alarm, --min-requests) go with --strategy",
                param_hint="'--strategy'",
            )
        return None
    return {
        "strategy": strategy,
        "canary_size": percent(canary_size, "--canary-size"),
        "step_size": percent(step, "--step"),
        "wait": duration(wait, "--wait"),
        "bake": duration(bake, "--bake"),
        "max_duration": duration(max_duration, "--max-duration"),
        "alarms": list(alarm or ()),
        "min_requests": min_requests,
    }
