"""``modelyard monitor baseline|drift``: a version's drift baseline, and an endpoint's drift.

``monitor drift`` prints one table per variant: each feature's deciding test, its effect size
against the threshold, the p-value, the rows on each side and the verdict; then the
predictions, then data-quality issues. ``--json`` prints the reports (``DriftReport.to_dict``),
one per variant, as a list.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelyard.cli import drift_options as thresholds
from modelyard.cli.context import platform
from modelyard.cli.render import console, print_json
from modelyard.domain.drift import (
    DriftReport,
    FeatureDrift,
    SmallBaseline,
    Verdict,
    overall,
)
from modelyard.domain.durations import parse_duration
from modelyard.errors import NotFound

if TYPE_CHECKING:
    from modelyard.monitoring.profile import Profile

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
#: ``monitor drift --check``'s exit code for the overall verdict.
_CHECK_EXIT = {Verdict.NO_DRIFT: 0, Verdict.DRIFT: 10, Verdict.INSUFFICIENT_DATA: 11}

_STYLES = {
    Verdict.DRIFT: "bold red",
    Verdict.NO_DRIFT: "green",
    Verdict.INSUFFICIENT_DATA: "yellow",
}


def baseline(
    ref: Annotated[str, typer.Argument(metavar="NAME:VERSION", help="The model version.")],
    data: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Make the rows of this CSV, JSON, JSON Lines or Parquet file the version's "
            "baseline (columns the model does not take are ignored). Without it, show the "
            "current baseline.",
        ),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Set (from --data FILE) or show the drift baseline of model version NAME:VERSION.

    A version trained by a training job carries the profile of its training data; a baseline
    set here replaces it, with the model's predictions on the file's rows.
    """
    drift = platform().drift
    if data is not None:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", SmallBaseline)
            profile = drift.set_baseline(ref, data)
        for warning in said:  # told once, here, rather than by Python's warning printer
            typer.echo(f"warning: {warning.message} (--min-rows)", err=True)
    else:
        found = drift.baseline(ref)
        if found is None:
            raise NotFound(f"{ref} has no baseline; set one from a dataset with --data FILE")
        profile = found
    summary = _summary(profile)
    if json_:
        print_json({"model": ref, **summary})
        return
    verb = f"set from {data}" if data is not None else "holds"
    predictions = summary["predictions"]
    console.print(
        f"baseline of {ref} {verb}: {profile.row_count:,} rows, "
        f"{len(profile.columns)} feature(s)"
        + (
            f", predictions {', '.join(predictions['columns'])}"
            if predictions
            else ", no predictions"
        ),
        markup=False,
    )
    table = Table("feature", "kind", "present", "missing", "min", "mean", "max")
    for name, entry in summary["features"].items():
        table.add_row(
            name,
            entry["kind"],
            f"{entry['count']:,}",
            f"{entry['missing']:,}",
            *(_number(entry.get(k)) for k in ("min", "mean", "max")),
        )
    console.print(table)


def drift(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")],
    variant: Annotated[str | None, typer.Option(help="One variant (default: each).")] = None,
    window: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION", help="Captured traffic to check: 30m, 1h, 1d (default 1h)."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Check this file's rows instead of captured traffic (a table of features, or "
            "rows exported by `modelyard capture export`).",
        ),
    ] = None,
    threshold: thresholds.Threshold = None,
    min_rows: thresholds.MinRows = None,
    alpha: thresholds.Alpha = None,
    drift_share: thresholds.DriftShare = None,
    numeric_test: thresholds.NumericTest = None,
    categorical_test: thresholds.CategoricalTest = None,
    text_test: thresholds.TextTest = None,
    completeness_drop: thresholds.CompletenessDrop = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 10 when a variant drifted, 11 when none did but one had too little "
            "data, 0 only when every variant was judged and none drifted (for scripts and CI).",
        ),
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Compare endpoint NAME's inputs and predictions with each variant's model baseline.

    A feature drifts when its effect size reaches the threshold and its p-value is below the
    significance level; with too few rows the verdict is insufficient_data, never no_drift.
    Every threshold can be set; the report shows the ones it used. The exit code is 0 whatever
    the verdict unless --check is given.
    """
    if window is not None and data is not None:
        raise typer.BadParameter("give --window or --data, not both", param_hint="'--window'")
    config = thresholds.drift_config(locals())
    reports = platform().drift.drift(
        name,
        variant=variant,
        window=parse_duration(window) if window is not None else None,
        data=data,
        config=config,
    )
    if json_:
        print_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            _print_report(report)
    if check:
        code = _CHECK_EXIT[overall(r.verdict for r in reports)]
        if code:
            raise typer.Exit(code)


def _print_report(report: DriftReport) -> None:
    source = (
        f"{report.window_start:%Y-%m-%d %H:%M} to {report.window_end:%Y-%m-%d %H:%M} UTC"
        if report.window_start is not None and report.window_end is not None
        else "the given data"
    )
    share = ""
    if report.drifted_share is not None:
        # The share is of the features with a verdict: count those, and say how many had none.
        unjudged = sum(f.verdict is Verdict.INSUFFICIENT_DATA for f in report.features)
        judged = len(report.features) - unjudged
        share = f", {len(report.drifted)} of {judged} features drifted ({report.drifted_share:.0%})"
        if unjudged:
            share += f", {unjudged} with too little data"
    style = _STYLES[report.verdict]
    console.print(
        f"[bold]{escape(str(report.variant))}[/bold] ({escape(report.model)}), {source}: "
        f"[{style}]{report.verdict.value}[/{style}]{share}; rows: baseline "
        f"{report.baseline_rows:,}, current {report.current_rows:,}",
        markup=True,
    )
    if report.features or report.predictions:
        table = Table(
            "feature", "test", "effect", "threshold", "p-value", "rows (base/current)", "verdict"
        )
        for feature in report.features:
            table.add_row(*_row(feature.name, feature))
        for prediction in report.predictions:
            table.add_row(*_row(f"prediction: {prediction.name}", prediction))
        console.print(table)
    for issue in report.quality:
        console.print(f"  quality ({issue.check}): {issue.message}", markup=False)


def _row(label: str, feature: FeatureDrift) -> list[str | Text]:
    style = _STYLES[feature.verdict]
    return [
        label,
        feature.test,
        _number(feature.effect),
        _number(feature.threshold),
        _p_value(feature.p_value),
        f"{feature.baseline_rows:,}/{feature.current_rows:,}",
        Text(feature.verdict.value, style=style),
    ]


def _summary(profile: Profile) -> dict[str, Any]:
    summary = profile.summary()
    summary["predictions"] = profile.predictions.summary() if profile.predictions else None
    return summary


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return "<1e-300" if value < 1e-300 else f"{value:.3g}"
