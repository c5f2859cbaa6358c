"""Traffic weights of an endpoint's production variants: parsing ``blue=0.9,green=0.1`` (or
``blue=90%,green=10%``) and the rules every set of weights follows, whoever gives them (a new
config of ``create``, ``update`` or a deployment, or a change of weights alone):

- Weights are relative, as in SageMaker: a variant's share is its weight over the sum. A
  production variant not named keeps the weight it has in the endpoint's current config; one
  that has none (new to the endpoint, or a shadow before) must be named.
- Written as percentages, they are taken at their word: they name every production variant
  and add up to 100.
- No weights at all (a new config only): equal shares.

Shadow variants take no weight (they answer no request), so they never appear here.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

from modelyard.domain.numbers import parse_percent_text, real_value, shown_value
from modelyard.errors import InvalidInput
from modelyard.services.endpoint_shadows import takes_no_weight

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
        InvalidInput: naming the malformed part; a weight that is not a finite number (``inf``,
            ``nan``, ``1e400``); no weight at all; a variant given twice;
            percentages mixed with plain numbers; percentages that do not add up to 100 (naming
            their sum).
    """
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    out: dict[str, float] = {}
    percent: list[str] = []
    for part in (p for p in parts if p.strip()):
        key, sep, value = part.partition("=")
        # The value keeps any space but ASCII spaces and tabs: "90\u00a0%" is no number.
        key, value = key.strip(), value.strip(" \t")
        try:
            if not sep or not key:
                raise ValueError
            weight = parse_percent_text(value)
        except ValueError:
            raise InvalidInput(
                f"malformed weight {part!r}: expected VARIANT=NUMBER or VARIANT=PERCENT%"
            ) from None
        if not math.isfinite(weight):  # named as written: 1e400 is read as inf
            raise InvalidInput(
                f"weight of variant {key!r} must be a finite number, got {shown_value(value)}"
            )
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
        if not math.isfinite(weight):
            raise InvalidInput(
                f"weight of variant {variant!r} must be a finite number, got {weight}"
            )
        if weight < 0:
            raise InvalidInput(f"weight of variant {variant!r} must be >= 0, got {weight:g}")
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


def resolve_weights(
    given: Mapping[str, float] | None,
    production: Sequence[str],
    current: Mapping[str, float],
    *,
    shadows: Collection[str] = (),
    endpoint: str | None = None,
) -> dict[str, float]:
    """The weight of each of ``production`` (variant names, in order) from the weights
    ``given`` (:func:`parse_weights`; None: equal shares), under the rules of the module
    docstring.

    Args:
        current: The weights of the production variants of the endpoint's current config
            (empty for a new endpoint).
        shadows: The shadow variants (which take no weight).
        endpoint: The endpoint's name, for the messages.

    Raises:
        InvalidInput: weights that are no mapping; a weight that is not a real number (text,
            None, a bool, an int too large for a float); a weight for a variant that is not
            there or is a shadow; percentages that leave a production variant out; relative
            weights that leave out one with no weight yet; weights :func:`check_weights`
            refuses. Each names the variants.
    """
    if given is not None and not isinstance(given, Mapping):  # a list, or text, from Python
        raise InvalidInput(
            "weights must be a mapping of variant name to weight, got "
            f"{type(given).__name__} {shown_value(given)}"
        )
    if not given:
        out = dict.fromkeys(production, 1.0)
        check_weights(out)
        return out
    where = f"endpoint {endpoint!r}" if endpoint else "the config"
    read: dict[str, float] = {}
    for variant, weight in given.items():
        number = real_value(weight)
        if number is None:
            raise InvalidInput(
                f"the weight of variant {variant!r} must be a number, got {shown_value(weight)}"
            )
        read[variant] = number
    weighted_shadows = [v for v in given if v in shadows]
    if weighted_shadows:
        raise takes_no_weight(weighted_shadows[0])
    unknown = [v for v in given if v not in production]
    if unknown:
        raise InvalidInput(
            f"weights name unknown variant {', '.join(unknown)}; {where} has "
            f"{', '.join(production) or 'no production variant'}"
        )
    missing = [v for v in production if v not in given]
    if isinstance(given, PercentWeights) and missing:
        raise InvalidInput(
            "percentages share out all the traffic: give one for every production variant of "
            f"{where} (missing: {', '.join(missing)})"
        )
    new = [v for v in missing if v not in current]
    if new:
        raise InvalidInput(
            f"name a weight for every variant new to {where} (none yet: {', '.join(new)}); "
            "a variant not named keeps the weight it has now"
        )
    out = {v: read[v] if v in given else float(current[v]) for v in production}
    check_weights(out)
    return out
