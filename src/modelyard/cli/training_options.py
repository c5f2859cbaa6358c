"""The options ``modelyard train`` and ``modelyard tune`` share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TrainData = Annotated[
    str, typer.Option("--train", help="Training data: file, folder, glob or fsspec URL.")
]
AlgorithmOpt = Annotated[
    str | None,
    typer.Option(
        "--algorithm",
        help="Built-in algorithm: xgboost, lightgbm, linear-learner, "
        "kmeans, random-forest, text-classifier.",
    ),
]
ScriptOpt = Annotated[
    Path | None, typer.Option("--script", help="Your SageMaker script-mode training script.")
]
ValidationOpt = Annotated[str | None, typer.Option("--validation", help="Validation data.")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="Target column (CSV with header).")]
FlavorOpt = Annotated[
    str | None,
    typer.Option("--flavor", help="Flavor of the script's model (default: detected)."),
]
MetricDefinitionsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric-definition",
        help="name=REGEX with one group, read from the script's log (repeatable).",
    ),
]
DescriptionOpt = Annotated[str | None, typer.Option("--description", help="Version description.")]
TrustPickleOpt = Annotated[
    bool,
    typer.Option(
        "--trust-pickle/--no-trust-pickle", help="Accept a pickle/joblib model from the script."
    ),
]
TrustCodeOpt = Annotated[
    bool,
    typer.Option(
        "--trust-code/--no-trust-code",
        help="Accept a model that is your own Python code (a pyfunc model from the script).",
    ),
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the job until it ends.")]
