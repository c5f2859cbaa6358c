"""Fitting a profile to a model's input signature: the columns a baseline must have.

A baseline describes what the model takes, so its columns are the signature's inputs, in their
order. Columns the model does not take (a label, an id) are dropped; a column the model takes
but the data lacks, or numbers the model needs given as text, make the data unfit to be a
baseline. A model with unnamed features takes them by position: columns are renamed ``0``,
``1``... (as captured rows name them: ``input.0``, ``input.1``...).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.domain import Signature
from modelyard.errors import InvalidInput
from modelyard.monitoring.profile import Profile

_NUMERIC_PREFIXES = ("int", "uint", "float", "Int", "UInt", "Float")


def fit_to_signature(profile: Profile, signature: Signature | None) -> Profile:
    """``profile`` with exactly the signature's input columns, in its order.

    Returns ``profile`` unchanged when the model has no input signature.

    Raises:
        InvalidInput: naming the signature columns the profile lacks, or the columns whose
            values are text where the signature has numbers.
    """
    if signature is None or not signature.inputs:
        return profile
    names = signature.feature_names
    if names is None:
        if len(profile.columns) != signature.n_features:
            raise InvalidInput(
                f"the model takes {signature.n_features} unnamed features by position; the "
                f"data has {len(profile.columns)} columns ({_listed(profile.columns)})"
            )
        profile = by_position(profile, signature)
        names = signature.input_names
    missing = [n for n in names if n not in profile.columns]
    if missing:
        raise InvalidInput(
            f"the data does not match the model's signature: it lacks column(s) "
            f"{_listed(missing)} (the model takes {_listed(names)}){_near(missing, profile)}"
        )
    refuse_text_for_numbers(profile, signature)
    return profile.select(names)


def refuse_text_for_numbers(profile: Profile, signature: Signature | None) -> None:
    """Refuse a profile whose columns hold text where the signature takes numbers (a Parquet
    column of numerals stored as strings); columns it lacks are not checked here.

    Raises:
        InvalidInput: naming each such column, with its dtype in the signature.
    """
    if signature is None or not signature.inputs:
        return
    names = signature.input_names
    have = set(profile.columns)
    wrong = [
        f"{name} ({spec.dtype} in the signature, {profile.column(name).kind} in the data)"
        for name, spec in zip(names, signature.inputs, strict=True)
        if name in have
        and str(spec.dtype).startswith(_NUMERIC_PREFIXES)
        and profile.column(name).kind != "numeric"
        and profile.column(name).present
    ]
    if wrong:
        raise InvalidInput(
            f"the data does not match the model's signature: column(s) {'; '.join(wrong)}"
        )


def by_position(profile: Profile, signature: Signature | None) -> Profile:
    """``profile`` with its columns named ``0``, ``1``... as a model taking unnamed features
    reads them (by position) and as its baseline and captured rows name them, when it has
    exactly as many columns; otherwise (or for a model with named features) unchanged."""
    if signature is None or not signature.inputs or signature.feature_names is not None:
        return profile
    if len(profile.columns) != signature.n_features:
        return profile
    return profile.renamed(dict(zip(profile.columns, signature.input_names, strict=True)))


def _near(missing: Sequence[str], profile: Profile) -> str:
    """The data's columns spelt like missing ones but for spaces or case (' age', 'Age'),
    quoted so the difference shows; empty when none is: without them, 'lacks age (the model
    takes age)' reads as a refusal of the very column the file seems to hold."""
    wanted = {n.casefold() for n in missing}
    near = [c for c in profile.columns if c.strip().casefold() in wanted]
    if not near:
        return ""
    return (
        f"; the data has {', '.join(map(repr, near))}, whose names differ from them only in "
        "spaces or case"
    )


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"
