"""Shadow variants in the control plane: the sampling a new config gives its shadows, checked,
and promoting a shadow to be its endpoint's sole production variant.

A shadow variant answers no request: the production variants answer, and a copy of a sampled
share of their requests goes to the shadow off the response path (the data plane's shadow
wrapper). So a shadow takes no weight, and a config needs at least one production variant.
Promoting needs no model check: the shadow's model is served (loaded, warmed) already. It
does need the shadow to take the callers' rows as they are (:func:`check_promotable`): as a
shadow it was sent production's rows with its own columns picked out, but once promoted it
decodes the callers' requests by its own inputs.

A shadow is sent the rows decoded for the production variant that answered (the request is
decoded once), so its model must take those rows: the same named inputs, in any order, or fewer
of them (the data plane picks and orders the columns it takes); a config whose shadow takes an
input a production variant does not decode is refused (:func:`check_inputs`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping

from modelyard.domain import ConfigChange, Endpoint, EndpointConfig, ModelVersion, Variant
from modelyard.domain.numbers import real_value, shown_value
from modelyard.domain.references import ModelRef
from modelyard.domain.signature import Signature, columns_for, listed_names
from modelyard.errors import InvalidInput, VariantNotFound
from modelyard.storage.base import EndpointStore


def takes_no_weight(variant: str) -> InvalidInput:
    """The error for a weight given to shadow ``variant``."""
    return InvalidInput(
        f"variant {variant!r} is a shadow: it answers no request, so it takes no weight; "
        "give weights to the production variants only (promote the shadow to give it traffic)"
    )


def sampling(
    shadows: Mapping[str, float] | None,
    variants: Collection[str],
    weights: Mapping[str, float] | None,
) -> dict[str, float]:
    """Each shadow variant's sampling percentage, checked against a new config's ``variants``
    and ``weights`` (variant name → relative weight).

    Raises:
        InvalidInput: a shadow that is not one of ``variants``; a sampling that is not a
            number from 0 to 100; a weight given for a shadow; every variant a shadow.
    """
    if not shadows:
        return {}
    unknown = [name for name in shadows if name not in variants]
    if unknown:
        raise InvalidInput(
            f"shadows name unknown variant {', '.join(map(repr, unknown))}; "
            f"the variants: {', '.join(variants)}"
        )
    out: dict[str, float] = {}
    for name, given in shadows.items():
        number = real_value(given)
        if number is None or not math.isfinite(number) or not 0 <= number <= 100:
            raise InvalidInput(
                f"the shadow sampling of variant {name!r} must be a percentage from 0 to 100, "
                f"got {shown_value(given)}"
            )
        out[name] = float(number)
    weighted = [name for name in (weights or {}) if name in out]
    if weighted:
        raise takes_no_weight(weighted[0])
    if len(out) == len(variants):
        raise InvalidInput(
            "a shadow cannot be the only variant: at least one production variant answers "
            f"the requests (every variant is a shadow: {', '.join(out)})"
        )
    return out


def check_kept(
    variants: Collection[str],
    sampled: Mapping[str, float],
    weights: Mapping[str, float] | None,
    current: Mapping[str, float],
    endpoint: str | None = None,
) -> None:
    """Refuse a new config that would turn a shadow of the current one into a production
    variant without being asked: its name given again, neither as a shadow (``sampled``) nor
    with a weight. Such an update sent the model under trial a share of the callers' requests
    (equal shares, with no weights given), answering them, because its share was not repeated.

    Args:
        current: The current config's shadows and their sampling percentages.

    Raises:
        InvalidInput: naming each such variant and the two ways to say what is meant.
    """
    silent = [
        name
        for name in variants
        if name in current and name not in sampled and name not in (weights or {})
    ]
    if silent:
        where = f" of endpoint {endpoint!r}" if endpoint else ""
        shares = ", ".join(f"{n!r} ({current[n]:g}% of requests)" for n in silent)
        raise InvalidInput(
            f"variant {shares}{where} is a shadow now and would answer requests in the new "
            "config: give its shadow share again to keep it a shadow, or give it a weight to "
            "make it answer (or promote it)"
        )


def check_inputs(
    versions: Mapping[str, ModelVersion],
    shadows: Collection[str],
    alongside: Mapping[str, ModelVersion] | None = None,
) -> None:
    """Check that each shadow's model (``versions``: each variant's) can take the rows decoded
    for each production variant: those of the config (the variants not in ``shadows``) and
    those of another config answering beside it (``alongside``: a rollout's old config).

    Raises:
        InvalidInput: a shadow takes a named input that a production variant's model does not,
            or (features without names) another number of features; the message names them.
    """
    producers = [
        (f"production variant {name!r}", version)
        for name, version in versions.items()
        if name not in shadows
    ]
    producers += [
        (f"production variant {name!r} of the config being replaced", version)
        for name, version in (alongside or {}).items()
    ]
    for shadow in shadows:
        wanted = versions[shadow]
        for producer, given in producers:
            try:
                columns_for(wanted.signature, given.signature)
            except ValueError as exc:
                raise InvalidInput(
                    f"shadow variant {shadow!r} ({wanted.ref}) cannot take the rows decoded for "
                    f"{producer} ({given.ref}): {exc}. A shadow is sent the production "
                    "variant's rows, so its model must take the same inputs (in any order, or "
                    "fewer of them)"
                ) from None


def promoted(endpoint: str, config: EndpointConfig, variant: str | None) -> tuple[Variant, ...]:
    """The variants of the config that promotes shadow ``variant`` of ``config`` (the only
    shadow when None): it alone, as a production variant with weight 1, keeping its model
    version, batching, predictor and capture. The production variants and other shadows leave.

    Raises:
        InvalidInput: ``config`` has no shadow; several and ``variant`` is None; ``variant``
            is not a shadow.
        VariantNotFound: ``variant`` is not one of its variants.
    """
    shadows = [v for v in config.variants if v.is_shadow]
    names = ", ".join(v.name for v in shadows)
    if not shadows:
        raise InvalidInput(
            f"endpoint {endpoint!r} has no shadow variant to promote (config {config.number} "
            f"serves {', '.join(v.name for v in config.variants)}, all production variants)"
        )
    if variant is None:
        if len(shadows) > 1:
            raise InvalidInput(
                f"endpoint {endpoint!r} has {len(shadows)} shadow variants ({names}); "
                "name the one to promote"
            )
        chosen = shadows[0]
    else:
        found = config.variant(variant)
        if found is None:
            raise VariantNotFound(
                f"endpoint {endpoint!r} has no variant {variant!r}; its shadow variants: {names}"
            )
        if not found.is_shadow:
            raise InvalidInput(
                f"variant {variant!r} of endpoint {endpoint!r} is a production variant, not a "
                f"shadow: there is nothing to promote; its shadow variants: {names}"
            )
        chosen = found
    return (dataclasses.replace(chosen, weight=1.0, shadow=None),)


def check_promotable(
    endpoint: str, shadow: Variant, version: ModelVersion, production: Mapping[str, ModelVersion]
) -> None:
    """Refuse promoting ``shadow`` (its model ``version``) when its model does not take the
    rows callers send now, as they are: the inputs of each ``production`` variant's model (by
    variant name), in their order.

    A shadow may take production's inputs in another order or fewer of them, since its copies
    hold the columns it takes; promoted, it decodes the callers' requests by its own inputs, so
    rows by position (CSV, arrays) would be read in its order, silently giving one input's
    values to another, and rows naming an input it does not take would be refused.

    Raises:
        InvalidInput: naming both models' inputs and what to do instead; nothing is written.
    """
    for name, given in production.items():
        try:
            fits = columns_for(version.signature, given.signature) is None
        except ValueError:  # it takes an input the callers do not send (a config stored
            fits = False  # before shadows' inputs were checked)
        if fits:
            continue
        raise InvalidInput(
            f"shadow variant {shadow.name!r} of endpoint {endpoint!r} cannot be promoted: its "
            f"model {version.ref} takes {_inputs(version.signature)}, and callers send the "
            f"inputs of production variant {name!r} ({given.ref}): "
            f"{_inputs(given.signature)}. As a shadow it was sent those rows with its own "
            "columns picked out; promoted, it would decode the callers' requests by its own "
            "inputs, reading rows by position (CSV, arrays) in its order and refusing named "
            "rows with inputs it does not take. Register the model to take production's inputs "
            "in production's order, or update the endpoint to serve it once callers send its "
            "inputs"
        )


def _inputs(signature: Signature | None) -> str:
    if signature is None or not signature.inputs:
        return "inputs it does not name"
    names = signature.feature_names
    if names is None:
        return f"{signature.n_features} unnamed inputs"
    return f"inputs {listed_names(names)}"


def promote(
    store: EndpointStore,
    resolve: Callable[[ModelRef], ModelVersion],
    endpoint: str,
    variant: str | None,
) -> Endpoint:
    """Write the config that promotes shadow ``variant`` of ``endpoint`` (see
    :func:`promoted` and :func:`check_promotable`, ``resolve`` giving each variant's model
    version); a rollback returns to the config it replaced.

    Raises:
        InvalidInput, VariantNotFound: see :func:`promoted` and :func:`check_promotable`;
            nothing is written. EndpointNotFound.
        Conflict: the endpoint changed meanwhile (nothing is written).
    """
    current = store.get_endpoint(endpoint).config
    variants = promoted(endpoint, current, variant)

    def version_of(v: Variant) -> ModelVersion:
        return resolve(ModelRef(v.model, version=v.version))

    chosen = variants[0]
    production = {v.name: version_of(v) for v in current.variants if not v.is_shadow}
    check_promotable(endpoint, chosen, version_of(chosen), production)
    return store.add_config(
        endpoint,
        variants,
        ConfigChange.PROMOTE,
        expected_current=current.number,
        parent=current.number,
    )
