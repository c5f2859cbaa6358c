"""``--capture [VARIANT=]PERCENT`` and ``--capture-redact FIELD[:hash|:drop]`` of
``modelyard endpoints create|update``: parsed into a capture config per variant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from modelyard.cli.options import per_variant
from modelyard.domain import CaptureConfig, RedactedField
from modelyard.domain.capture import parse_percent
from modelyard.errors import InvalidInput

CaptureOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--capture",
        metavar="[VARIANT=]PERCENT",
        help="Record this share of a variant's requests (0-100; inputs, outputs, latency, "
        "time) as Parquet files under the capture root, for 'modelyard capture'. A value "
        "without VARIANT= applies to every variant not named. Default: off. Repeatable.",
    ),
]
RedactOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--capture-redact",
        metavar="FIELD[:hash|:drop]",
        help="An input field whose captured values are replaced: hashed (the default; a "
        "salted SHA-256, so equal values stay equal) or dropped (null). Applies to every "
        "variant. Repeatable.",
    ),
]


def capture_configs(
    values: Sequence[str] | None, redact: Sequence[str] | None, variants: Sequence[str]
) -> dict[str, CaptureConfig]:
    """A capture config per variant named by ``--capture`` (a bare value: every variant not
    named), each with the ``--capture-redact`` fields.

    Raises:
        typer.BadParameter: a malformed value, two bare values, or redaction without capture
            (a usage error, exit 2, naming the option).
    """
    try:
        fields = tuple(RedactedField.parse(r) for r in redact or ())
        CaptureConfig(0.0, fields)  # refuses a field given twice
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message, param_hint="'--capture-redact'") from None
    configs = per_variant(
        values,
        variants,
        "--capture",
        "a capture percent",
        lambda text: CaptureConfig(parse_percent(text), fields),
    )
    if fields and not configs:
        raise typer.BadParameter(
            "fields are redacted only in captured requests; give --capture PERCENT too",
            param_hint="'--capture-redact'",
        )
    return configs
