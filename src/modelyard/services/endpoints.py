"""The endpoint service: create, update, re-weight, roll back, promote a shadow and delete
endpoints.

Every change makes a new immutable config. Models named by a change are resolved to versions
(an alias is pinned to the version it points at now) and loaded and warmed here, before the
config is written, so a model that cannot load never becomes current. The same check chooses
each variant's predictor the way a server will (and caches the compiled trees for it), so a
variant that asks for the compiled predictor of a model that cannot have one is refused here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from modelyard.domain import (
    Batching,
    CaptureConfig,
    ConfigChange,
    Endpoint,
    EndpointConfig,
    ModelRef,
    ModelVersion,
    Predictor,
    Signature,
    Variant,
    validate_name,
)
from modelyard.domain.capture import KeepCapture, RedactedField, Redaction
from modelyard.domain.numbers import shown_value
from modelyard.errors import (
    AlreadyExists,
    Conflict,
    EndpointNotFound,
    InvalidInput,
    ModelyardError,
)
from modelyard.services import endpoint_shadows
from modelyard.services.endpoint_weights import parse_weights as parse_weights
from modelyard.services.endpoint_weights import resolve_weights
from modelyard.storage.base import EndpointStore


@dataclass(frozen=True, slots=True)
class PredictorCheck:
    """Which predictor would serve a checked model version, and why.

    Attributes:
        kind: ``compiled`` or ``native``.
        reason: One line, ``compiled (onnxruntime tree ensemble): …`` or ``native: …``.
    """

    kind: str
    reason: str


#: Loads and warms a version as a server would with the given predictor choice, and says which
#: predictor would serve it; raises a ModelyardError if it cannot serve at all.
ModelCheck = Callable[[ModelVersion, Predictor], PredictorCheck]
ResolveVersion = Callable[[ModelRef], ModelVersion]


class UpdateOptions(TypedDict, total=False):
    """What :meth:`EndpointService.update` takes besides the endpoint and its variants."""

    weights: Mapping[str, float] | None
    batching: Mapping[str, Batching] | None
    predictors: Mapping[str, Predictor] | None
    capture: Mapping[str, CaptureConfig] | KeepCapture | None
    shadows: Mapping[str, float] | None


class EndpointService:
    """Control-plane rules for endpoints; the CLI, Python API and REST API call this."""

    def __init__(
        self, store: EndpointStore, resolve: ResolveVersion, check_model: ModelCheck
    ) -> None:
        self._store = store
        self._resolve = resolve
        self._check = check_model

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Endpoint:
        """Raises InvalidName, EndpointNotFound."""
        return self._store.get_endpoint(validate_name(name, "endpoint name"))

    def list_endpoints(self) -> list[Endpoint]:
        """All endpoints, by name."""
        return self._store.list_endpoints()

    def history(self, name: str) -> list[EndpointConfig]:
        """Every config of ``name``, oldest first."""
        return self._store.history(validate_name(name, "endpoint name"))

    def in_use(self, version: ModelVersion) -> str | None:
        """A registry guard: why ``version`` may not be archived or deleted, if it is served."""
        names = self._store.endpoints_serving(version.name, version.version)
        return f"it is served by endpoint {', '.join(names)}" if names else None

    # -- changing ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None = None,
        batching: Mapping[str, Batching] | None = None,
        predictors: Mapping[str, Predictor] | None = None,
        capture: Mapping[str, CaptureConfig] | None = None,
        shadows: Mapping[str, float] | None = None,
    ) -> Endpoint:
        """Create an endpoint serving ``variants`` (variant name → model reference).

        Weights (of the production variants; relative, or percentages of every one: see
        :func:`~modelyard.services.endpoint_weights.resolve_weights`; a new endpoint's must
        name every production variant) default to equal shares, batching to
        :class:`Batching`'s defaults, predictors (variant name → auto, native or compiled) to
        auto, capture (variant name → its :class:`CaptureConfig`) to off. ``shadows`` (variant
        name → sampling percentage, 0-100) makes those variants shadows: weight 0, answering
        nothing, getting a copy of that share of the requests the production variants answer.

        Raises:
            InvalidName, InvalidInput (also: a variant asks for the compiled predictor and its
            model cannot have one, with the reason; a redacted field that is not one of the
            model's inputs; a shadow that is not a variant, has a sampling outside 0-100 or is
            given a weight; every variant a shadow), AlreadyExists, the registry's lookup
            errors, and whatever loading a model raises. Nothing is written then.
        """
        validate_name(name, "endpoint name")
        # Refuse a taken name before loading any model (seconds); the store's unique key still
        # settles a race between two creators.
        if name in {e.name for e in self._store.list_endpoints()}:
            raise AlreadyExists(f"endpoint {name!r} already exists")
        built = self._build(variants, weights, batching, predictors, capture, shadows)
        return self._store.create_endpoint(name, built)

    def update(
        self,
        name: str,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None = None,
        batching: Mapping[str, Batching] | None = None,
        predictors: Mapping[str, Predictor] | None = None,
        capture: Mapping[str, CaptureConfig] | KeepCapture | None = None,
        shadows: Mapping[str, float] | None = None,
    ) -> Endpoint:
        """Serve new models: a new config replacing every variant (batching, predictors,
        capture and shadows not given take their defaults, as in :meth:`create`; capture
        :class:`KeepCapture` keeps the endpoint's, see there). Weights
        mean what they mean to :meth:`set_weights`: a production variant not named keeps its
        current weight (one new to the endpoint must be named); none given: equal shares.
        A config identical to the current one is not written again: the endpoint is
        returned as it is (:meth:`update_if_changed` tells which happened).
        Raises what :meth:`create` raises (but AlreadyExists), and EndpointNotFound, Conflict."""
        options = UpdateOptions(
            weights=weights,
            batching=batching,
            predictors=predictors,
            capture=capture,
            shadows=shadows,
        )
        return self.update_if_changed(name, variants, **options)[0]

    def update_if_changed(
        self, name: str, variants: Mapping[str, str], **options: Unpack[UpdateOptions]
    ) -> tuple[Endpoint, bool]:
        """:meth:`update` (``options``: its own), and whether it wrote a new config: False
        when the config it builds is the current one exactly (the same variants, model
        versions, weights, batching, predictors, capture and shadows), which is not written
        again: a config with nothing new would only push the one before out of reach of a
        rollback. Raises what :meth:`update` raises."""
        capture = options.get("capture")
        endpoint = self.get(name)
        current = endpoint.config
        if isinstance(capture, KeepCapture):
            _check_mapping(variants, "variants", "variant name to model reference")
            capture = self._kept(current, variants, capture.percent)
        built = self._build(
            variants,
            options.get("weights"),
            options.get("batching"),
            options.get("predictors"),
            capture,
            options.get("shadows"),
            current=_weights_of(current.variants),
            current_shadows=_shadows_of(current.variants),
            endpoint=name,
        )
        if built == current.variants:
            return endpoint, False
        written = self._store.add_config(
            name, built, ConfigChange.UPDATE, expected_current=current.number, parent=current.number
        )
        return written, True

    def deploy(
        self,
        name: str,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None = None,
        batching: Mapping[str, Batching] | None = None,
        predictors: Mapping[str, Predictor] | None = None,
        capture: Mapping[str, CaptureConfig] | None = None,
        shadows: Mapping[str, float] | None = None,
    ) -> Endpoint:
        """Serve ``variants`` at ``name``, whether or not it exists: :meth:`create` it, or
        :meth:`update` it to a new config (the SageMaker SDK's ``deploy``). Raises what those
        raise."""
        try:
            self.get(name)
        except EndpointNotFound:
            try:
                return self.create(name, variants, weights, batching, predictors, capture, shadows)
            except AlreadyExists:  # another caller created it meanwhile: update theirs
                pass
        return self.update(name, variants, weights, batching, predictors, capture, shadows)

    def set_weights(self, name: str, weights: Mapping[str, float]) -> Endpoint:
        """Change traffic shares only: the same model versions, batching, predictors, capture
        and shadows; no model is reloaded. ``weights`` mean what they mean to :meth:`update`
        (:func:`~modelyard.services.endpoint_weights.resolve_weights`): production variants
        not named keep their weight; :class:`PercentWeights` (``parse_weights`` of
        ``blue=90%,green=10%``) must name every one.

        Raises:
            InvalidInput: no weights; what ``resolve_weights`` refuses.
            InvalidName, EndpointNotFound, Conflict.
        """
        current = self.get(name).config
        if not weights:
            raise InvalidInput("no weights given: name a weight for at least one variant")
        merged = resolve_weights(
            weights,
            [v.name for v in current.variants if not v.is_shadow],
            _weights_of(current.variants),
            shadows=[v.name for v in current.variants if v.is_shadow],
            endpoint=name,
        )
        variants = tuple(
            v if v.is_shadow else dataclasses.replace(v, weight=merged[v.name])
            for v in current.variants
        )
        return self._next(name, current, variants, ConfigChange.WEIGHTS)

    def set_capture(self, name: str, percent: float | str) -> Endpoint:
        """Capture ``percent`` (0-100; 0: off) of every variant's requests; the same models
        and everything else, no model reloaded (what the SageMaker SDK's
        ``update_data_capture_config`` asks of an endpoint). Each variant keeps its
        redactions and takes those of the other variants on fields its model has: a variant
        that did not capture (and so had no redaction) would otherwise start capturing in
        clear what the others redact.

        Raises:
            InvalidInput: a percentage outside 0-100, or a redaction a capturing variant
                cannot match (see :func:`_carried_redactions`). InvalidName,
                EndpointNotFound, Conflict.
        """
        current = self.get(name).config
        share = CaptureConfig.parse(percent).percent
        variants = []
        for v in current.variants:
            version = self._resolve(ModelRef(v.model, version=v.version))
            redact = _carried_redactions(
                current.variants, v.name, version, v.capture.redact, capturing=share > 0
            )
            variants.append(dataclasses.replace(v, capture=CaptureConfig(share, redact)))
        return self._next(name, current, tuple(variants), ConfigChange.CAPTURE)

    def _kept(
        self, current: EndpointConfig, variants: Mapping[str, str], percent: float | None
    ) -> dict[str, CaptureConfig]:
        """:class:`KeepCapture` for the new ``variants`` over the ``current`` config."""
        share = None if percent is None else CaptureConfig.parse(percent).percent
        shares = {v.name: v.capture.percent for v in current.variants}
        largest = max(shares.values(), default=0.0)
        kept = {}
        for variant, ref in variants.items():
            version = self._resolve(ModelRef.parse(ref))
            kept_share = shares.get(variant, largest) if share is None else share
            redact = _carried_redactions(
                current.variants, variant, version, capturing=kept_share > 0
            )
            kept[variant] = CaptureConfig(kept_share, redact)
        return kept

    def _next(
        self,
        name: str,
        current: EndpointConfig,
        variants: tuple[Variant, ...],
        change: ConfigChange,
    ) -> Endpoint:
        """``variants`` as the config after ``current``, unless another came first
        (Conflict); a rollback returns to ``current``."""
        return self._store.add_config(
            name, variants, change, expected_current=current.number, parent=current.number
        )

    def rollback(self, name: str, expected: int | None = None) -> Endpoint:
        """Return to the config that was current before this one (again: one further back),
        with its variants' weights, batching, predictors, capture and shadows.

        Models (or predictor choices) that the current config does not serve are checked
        again first. Raises InvalidInput when there is nothing to roll back to, and Conflict
        when ``expected`` (a config number the caller judged the endpoint by) is no longer
        current.
        """
        current = self.get(name).config
        if expected is not None and current.number != expected:
            raise Conflict(
                f"endpoint {name!r} changed meanwhile (now at config {current.number}); retry"
            )
        _, parent = self._store.get_config(name, current.number)
        if parent is None:
            raise InvalidInput(
                f"endpoint {name!r} is at config {current.number}, which has no earlier config "
                "to roll back to"
            )
        target, grandparent = self._store.get_config(name, parent)
        served = {(v.model_ref, v.predictor) for v in current.variants}
        for variant in target.variants:
            if (variant.model_ref, variant.predictor) not in served:
                version = self._resolve(ModelRef(variant.model, version=variant.version))
                self._checked(variant.name, version, variant.predictor)
        return self._store.add_config(
            name,
            target.variants,
            ConfigChange.ROLLBACK,
            expected_current=current.number,
            parent=grandparent,
        )

    def promote(self, name: str, variant: str | None = None) -> Endpoint:
        """Make shadow ``variant`` (the endpoint's only shadow when None) its sole production
        variant: a new config (change ``promote``) serving it alone with weight 1, its model
        version, batching, predictor and capture kept; the other variants leave. Nothing is
        reloaded: servers have the model loaded already. :meth:`rollback` undoes it.

        This is a change by hand, like :meth:`update`: a guarded deployment running on the
        endpoint stops when it sees it (``DeploymentService.promote`` refuses instead).

        Raises:
            InvalidInput: the endpoint has no shadow, or several and ``variant`` is None;
                ``variant`` is not a shadow; its model does not take the callers' rows as
                they are (a production variant's inputs, in their order). Nothing is
                written.
            VariantNotFound: ``variant`` is not a variant of the endpoint.
            InvalidName, EndpointNotFound, Conflict (the endpoint changed meanwhile).
        """
        return endpoint_shadows.promote(
            self._store, self._resolve, validate_name(name, "endpoint name"), variant
        )

    def delete(self, name: str) -> None:
        """Remove an endpoint and its history; its active deployment, if any, ends STOPPED
        (saying the endpoint was deleted), and its drift schedule goes (its runs stay).
        Raises InvalidName, EndpointNotFound."""
        self._store.delete_endpoint(validate_name(name, "endpoint name"))

    def _checked(self, variant: str, version: ModelVersion, predictor: Predictor) -> None:
        try:
            found = self._check(version, predictor)
        except ModelyardError as exc:
            raise type(exc)(f"variant {variant!r} ({version.ref}) cannot serve: {exc}") from None
        if predictor is Predictor.COMPILED and found.kind != "compiled":
            # A server would quietly serve the native model; the caller asked for a promise.
            raise InvalidInput(
                f"variant {variant!r} ({version.ref}) cannot use the compiled predictor: "
                f"{found.reason.removeprefix('native: ')}"
            )

    # -- helpers -----------------------------------------------------------------------------

    def build(
        self,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None = None,
        batching: Mapping[str, Batching] | None = None,
        predictors: Mapping[str, Predictor] | None = None,
        capture: Mapping[str, CaptureConfig] | None = None,
        shadows: Mapping[str, float] | None = None,
        alongside: Sequence[Variant] = (),
        *,
        current: Mapping[str, float] | None = None,
        current_shadows: Mapping[str, float] | None = None,
        endpoint: str | None = None,
    ) -> tuple[Variant, ...]:
        """The variants a config with these settings would hold (references resolved, names,
        weights, shadows and options checked) without writing anything: a deployment plans
        with them. ``alongside``: production variants of another config that answer beside
        it (a rollout's old config), whose rows its shadows must take too. ``current``: the
        weights of the endpoint's current production variants, which variants not named in
        ``weights`` keep (see ``resolve_weights``); ``current_shadows``: its current shadows'
        shares (a shadow named again must be given a share or a weight, see
        ``endpoint_shadows.check_kept``); ``endpoint``: its name, for messages.

        Raises:
            InvalidInput, InvalidName, ModelNotFound / VersionNotFound / AliasNotFound.
        """
        return self._build(
            variants,
            weights,
            batching,
            predictors,
            capture,
            shadows,
            alongside,
            current=current,
            current_shadows=current_shadows,
            endpoint=endpoint,
        )

    def _build(
        self,
        variants: Mapping[str, str],
        weights: Mapping[str, float] | None,
        batching: Mapping[str, Batching] | None,
        predictors: Mapping[str, Predictor] | None,
        capture: Mapping[str, CaptureConfig] | None = None,
        shadows: Mapping[str, float] | None = None,
        alongside: Sequence[Variant] = (),
        *,
        current: Mapping[str, float] | None = None,
        current_shadows: Mapping[str, float] | None = None,
        endpoint: str | None = None,
    ) -> tuple[Variant, ...]:
        _check_mapping(variants, "variants", "variant name to model reference")
        if not variants:
            raise InvalidInput(
                "an endpoint needs at least one variant: name it and the model version it serves"
            )
        for variant in variants:
            validate_name(variant, "variant name")
        _check_mapping(batching or {}, "batching", "variant name to Batching")
        for variant, given in (batching or {}).items():
            if not isinstance(given, Batching):
                raise InvalidInput(
                    f"the batching of variant {variant!r} must be a Batching, "
                    f"got {shown_value(given)}"
                )
        extras = (  # the weights' own rule names their unknown variants
            (batching, "batching"),
            (predictors, "predictors"),
            (capture, "capture settings"),
        )
        for extra, what in extras:
            _check_mapping(extra or {}, what, "variant name to its setting")
            unknown = sorted(set(extra or {}) - set(variants))
            if unknown:
                raise InvalidInput(f"{what} name unknown variant {', '.join(unknown)}")
        sampled = endpoint_shadows.sampling(shadows, list(variants), weights)
        endpoint_shadows.check_kept(variants, sampled, weights, current_shadows or {}, endpoint)
        shares = resolve_weights(
            weights,
            [v for v in variants if v not in sampled],
            current or {},
            shadows=list(sampled),
            endpoint=endpoint,
        )
        # Parsed before any model loads: Python callers may pass plain strings.
        chosen = {v: Predictor.parse((predictors or {}).get(v, Predictor.AUTO)) for v in variants}
        captures = {v: _capture((capture or {}).get(v)) for v in variants}
        built = []
        versions = {v: self._resolve(ModelRef.parse(ref)) for v, ref in variants.items()}
        beside = {v.name: self._resolve(ModelRef(v.model, version=v.version)) for v in alongside}
        endpoint_shadows.check_inputs(versions, sampled, beside)
        for variant, ref_text in variants.items():
            version = versions[variant]
            _check_redacted(variant, version, captures[variant])
            self._checked(variant, version, chosen[variant])
            built.append(
                Variant(
                    name=variant,
                    model=version.name,
                    version=version.version,
                    weight=shares.get(variant, 0.0),
                    batching=(batching or {}).get(variant, Batching()),
                    requested=ref_text,
                    predictor=chosen[variant],
                    capture=captures[variant],
                    shadow=sampled.get(variant),
                )
            )
        return tuple(built)


def _check_mapping(given: object, what: str, of: str) -> None:
    """Refuse settings that are no mapping (Python callers may pass a list, or text)."""
    if not isinstance(given, Mapping):
        raise InvalidInput(
            f"{what} must be a mapping of {of}, got {type(given).__name__} {shown_value(given)}"
        )


def _capture(given: CaptureConfig | None) -> CaptureConfig:
    if given is None:
        return CaptureConfig()
    if not isinstance(given, CaptureConfig):  # Python callers may pass anything
        raise InvalidInput(f"capture settings must be a CaptureConfig, got {given!r}")
    return given


def _check_redacted(variant: str, version: ModelVersion, capture: CaptureConfig) -> None:
    """A redacted field must be one of the model's inputs: a misspelt name would leave the
    field it meant in the captured files, in clear."""
    fields = _input_fields(version.signature)
    if fields is None:
        return  # no signature: the names arrive with the requests
    unknown = [r.name for r in capture.redact if r.name not in fields]
    if unknown:
        raise InvalidInput(
            f"variant {variant!r} ({version.ref}) has no input {', '.join(map(repr, unknown))} "
            f"to redact; its inputs: {', '.join(fields)}"
        )


def _carried_redactions(
    current: Sequence[Variant],
    variant: str,
    version: ModelVersion,
    own: tuple[RedactedField, ...] = (),
    capturing: bool = True,
) -> tuple[RedactedField, ...]:
    """``own`` redactions, then every other redaction of the ``current`` variants on a field
    ``version``'s model has (all of them when it has no signature), matched regardless of
    case and carried under this model's spelling: a variant that did not capture must not
    start capturing in clear what the others redact.

    Raises:
        InvalidInput: when ``capturing``, a redaction that cannot be matched because one
            model names its inputs and the other only numbers them (``ssn`` for a model whose
            inputs are columns 0, 1, 2, or ``2`` for one naming ``a, b, ssn``): the same
            field would be captured in clear under its other name. A column number past the
            model's width is no column of it, and is not carried.
    """
    fields = _input_fields(version.signature)
    mine = {r.name for r in own}
    every: dict[str, RedactedField] = {}
    for v in current:
        for r in v.capture.redact:
            every[r.name] = _stronger(every.get(r.name), r)
    if fields is None:
        more = tuple(r for n, r in every.items() if n not in mine)
    else:
        # A field spelt otherwise in this model (``ssn`` redacted, ``SSN`` here) is carried
        # under this model's spelling: the same data, which was dropped and captured in clear.
        folded: dict[str, list[str]] = {}
        for field in fields:
            folded.setdefault(field.casefold(), []).append(field)
        carried: dict[str, RedactedField] = {}
        for n, r in every.items():
            for field in [n] if n in fields else folded.get(n.casefold(), []):
                if field not in mine:
                    spelt = r if field == n else dataclasses.replace(r, name=field)
                    carried[field] = _stronger(carried.get(field), spelt)
        more = tuple(carried.values())
    if capturing and fields is not None:
        unnamed = version.signature is not None and not version.signature.feature_names

        def unmatched_here(name: str) -> bool:
            if name in mine or name in fields or name.casefold() in folded:
                return False
            column = name.isascii() and name.isdigit()
            if unnamed:  # a named field: it may be any of this model's numbered columns
                return not column
            return column and int(name) < len(fields)  # a column this model has, named

        # A column number past the model's width is no column of it: nothing to capture.
        unmatched = [n for n in every if unmatched_here(n)]
        if unmatched:
            how = "names no inputs" if unnamed else "names its inputs"
            raise InvalidInput(
                f"variant {variant!r} ({version.ref}) cannot carry the endpoint's redaction of "
                f"{', '.join(map(repr, unmatched))}: its model {how} ({', '.join(fields)}), so "
                "the same field would be captured in clear under another name; give this "
                "variant its own capture and redactions, or leave its capture off"
            )
    return own + more


def _stronger(kept: RedactedField | None, other: RedactedField) -> RedactedField:
    """Of two redactions of one field (two variants', or ``ssn`` and ``SSN`` on one model's
    ``SSN``), the one that keeps less: ``drop`` over ``hash``, whatever the variants' order."""
    if kept is None or (other.mode is Redaction.DROP and kept.mode is not Redaction.DROP):
        return other
    return kept


def _input_fields(signature: Signature | None) -> list[str] | None:
    """The names captured inputs are stored under: the features' names, else their column
    numbers; None when the model has no signature."""
    if signature is None or not signature.inputs:
        return None
    return signature.input_names


def _weights_of(variants: Sequence[Variant]) -> dict[str, float]:
    """The weights of the production variants among ``variants``."""
    return {v.name: v.weight for v in variants if not v.is_shadow}


def _shadows_of(variants: Sequence[Variant]) -> dict[str, float]:
    """The sampling percentages of the shadows among ``variants``."""
    return {v.name: v.shadow for v in variants if v.shadow is not None}
