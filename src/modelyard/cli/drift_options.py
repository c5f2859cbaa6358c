"""The drift thresholds as command-line options, shared by ``monitor drift`` and ``monitor
schedule``: each option's type once, and :func:`drift_config`, which turns what was given into a
:class:`~modelyard.domain.drift.DriftConfig` (which decides what is valid)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from modelyard.cli.options import pairs
from modelyard.domain.drift import APPLICABLE, DEFAULT_THRESHOLDS, STATISTICS, DriftConfig

_DEFAULTS = DriftConfig()


def _tests(kind: str, what: str) -> str:
    return (
        f"The deciding statistic for {what}: {', '.join(APPLICABLE[kind])} "
        f"(default {_DEFAULTS.test_for(kind)})."
    )


Threshold = Annotated[
    list[str] | None,
    typer.Option(
        metavar="STAT=EFFECT",
        help="The effect size at or above which a statistic calls drift (repeatable): "
        f"{', '.join(STATISTICS)}. Others keep their defaults ("
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_THRESHOLDS.items())
        + ").",
    ),
]
MinRows = Annotated[
    int | None,
    typer.Option(
        help="Fewer rows than this on either side: insufficient_data "
        f"(default {_DEFAULTS.min_rows})."
    ),
]
Alpha = Annotated[
    float | None,
    typer.Option(
        help=f"Significance level a feature's p-value must be below (default {_DEFAULTS.alpha:g})."
    ),
]
DriftShare = Annotated[
    float | None,
    typer.Option(
        help="The dataset drifts when at least this share of its features drift "
        f"(default {_DEFAULTS.drift_share:g})."
    ),
]
NumericTest = Annotated[str | None, typer.Option(help=_tests("numeric", "numeric features"))]
CategoricalTest = Annotated[
    str | None, typer.Option(help=_tests("categorical", "categorical features"))
]
TextTest = Annotated[str | None, typer.Option(help=_tests("text", "text features (lengths)"))]
CompletenessDrop = Annotated[
    float | None,
    typer.Option(
        help="Report a column whose share of present values falls by more than this "
        f"(default {_DEFAULTS.completeness_drop:g})."
    ),
]


#: The options' parameter names: ``DriftConfig`` fields, and ``threshold`` (its thresholds).
_FIELDS = (
    "min_rows",
    "alpha",
    "drift_share",
    "numeric_test",
    "categorical_test",
    "text_test",
    "completeness_drop",
)


def drift_config(options: Mapping[str, Any]) -> DriftConfig | None:
    """The thresholds a command was given, from its parameters (``options``: its
    ``locals()``, which hold these options under their names, None when not given); None
    when none was given (the defaults).

    Raises:
        typer.BadParameter: a ``--threshold`` item that is not ``STAT=NUMBER`` or names a
            statistic twice (exit 2).
        InvalidInput: a value ``DriftConfig`` refuses (an unknown statistic, a number out of
            range, a test that cannot apply), naming it.
    """
    effects: dict[str, float] = {}
    for stat, text in pairs(options["threshold"], "--threshold").items():
        try:
            effects[stat] = float(text)
        except ValueError:
            raise typer.BadParameter(
                f"{stat}={text}: the effect size must be a number", param_hint="'--threshold'"
            ) from None
    chosen = {k: options[k] for k in _FIELDS if options[k] is not None}
    if not chosen and not effects:
        return None
    return DriftConfig(**chosen, thresholds=effects)
