"""Traffic weights of an endpoint's production variants: parsing ``blue=0.9,green=0.1`` (or
``blue=90%,green=10%``) and the rules every set of weights follows.

Weights are relative, as in SageMaker: a variant's share is its weight over the sum. Written as
percentages, they are taken at their word: they must add up to 100. Shadow variants take no
weight (they answer no request), so they never appear here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from modelyard.errors import InvalidInput

#: How far percentages may miss 100 in total (rounding in what a person typed or a script made).
PERCENT_TOLERANCE = 1e-6


class PercentWeights(dict[str, float]):
    """Weights written as percentages (``blue=90%``), adding up to 100.

    A plain ``dict`` is relative weights. :meth:`EndpointService.set_weights` needs to know the
    difference: percentages describe the whole traffic, so they must name every production
    variant rather than leave one at its old relative weight.
    """


def parse_weights(text: str | Sequence[str]) -> dict[str, float]:
    """Parse ``blue=0.9,green=0.1`` (or a list of ``k=v``) into relative weights, or
    ``blue=90%,green=10%`` into :class:`PercentWeights`.

    Raises:
        InvalidInput: naming the malformed part; no weight at all; a variant given twice;
            percentages mixed with plain numbers; percentages that do not add up to 100 (naming
            their sum).
    """
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    out: dict[str, float] = {}
    percent: list[str] = []
    for part in (p.strip() for p in parts if p.strip()):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        try:
            if not sep or not key:
                raise ValueError
            weight = float(value.removesuffix("%"))
        except ValueError:
            raise InvalidInput(
                f"malformed weight {part!r}: expected VARIANT=NUMBER or VARIANT=PERCENT%"
            ) from None
        if key in out:
            raise InvalidInput(f"the weight of variant {key!r} is given twice; give it once")
        if value.endswith("%"):
            percent.append(key)
        out[key] = weight
    if not out:  # ``--weights ""``: an unset shell variable, most likely; not "equal shares"
        raise InvalidInput(
            f"no weights in {text!r}: expected VARIANT=NUMBER or VARIANT=PERCENT% pairs"
        )
    if not percent:
        return out
    if len(percent) != len(out):
        plain = ", ".join(k for k in out if k not in percent)
        raise InvalidInput(
            f"weights mix percentages with plain numbers ({plain}); give every weight as a "
            "percentage, adding up to 100%, or none"
        )
    check_weights(out)
    total = sum(out.values())
    if abs(total - 100.0) > PERCENT_TOLERANCE:
        raise InvalidInput(
            f"the weights add up to {total:.12g}%, not 100% "
            f"({', '.join(f'{k}={w:.12g}%' for k, w in out.items())})"
        )
    return PercentWeights(out)


def check_weights(weights: Mapping[str, float]) -> None:
    """The production variants' weights: each finite and >= 0, at least one above 0.

    Raises:
        InvalidInput: naming the variant, or the weights, at fault.
    """
    for variant, weight in weights.items():
        if not math.isfinite(weight) or weight < 0:
            raise InvalidInput(f"weight of variant {variant!r} must be >= 0, got {weight}")
    total = sum(weights.values())
    if total <= 0:
        raise InvalidInput("at least one variant needs a weight above 0")
    # Shares are weight / total everywhere (the router, `endpoints show`): a total that
    # overflows to inf would make every share 0 or NaN and send all traffic to the last variant.
    if not math.isfinite(total):
        raise InvalidInput(
            "the weights add up to more than the largest number there is "
            f"({', '.join(f'{v}={w:g}' for v, w in weights.items())}); "
            "give relative weights such as 0.9 and 0.1"
        )
