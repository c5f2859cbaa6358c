"""What alarm rules need to know of an endpoint (its variants, its models' feature names and
predicted classes), read through the endpoint, registry and drift services."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.domain import Endpoint, ModelVersion
from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    from modelyard.monitoring.predicted_classes import PredictedClasses
    from modelyard.monitoring.profile import Profile


class EndpointCatalog:
    """The :class:`~modelyard.services.alarm_metrics.EndpointInfo` of the endpoints in the store.

    Args:
        get_endpoint: ``EndpointService.get`` (raises EndpointNotFound).
        get_version: ``RegistryService.get_version`` for a ``model:N`` reference.
        baseline: ``DriftService.baseline`` for a ``model:N`` reference (default: no version
            has one, so their classes are unknown).
    """

    def __init__(
        self,
        get_endpoint: Callable[[str], Endpoint],
        get_version: Callable[[str], ModelVersion],
        baseline: Callable[[str], Profile | None] | None = None,
    ) -> None:
        self._get_endpoint = get_endpoint
        self._get_version = get_version
        self._baseline = baseline or (lambda _ref: None)

    def variants(self, endpoint: str) -> list[str]:
        """The variant names of ``endpoint``'s current config. Raises EndpointNotFound."""
        return [v.name for v in self._get_endpoint(endpoint).config.variants]

    def features(self, endpoint: str) -> list[str] | None:
        """The input feature names of every model ``endpoint`` serves, in order, each once;
        None when a model's signature does not name its inputs. Raises EndpointNotFound."""
        names: dict[str, None] = {}
        for variant in self._get_endpoint(endpoint).config.variants:
            signature = self._get_version(variant.model_ref).signature
            found = signature.feature_names if signature is not None else None
            if found is None:
                return None
            names.update(dict.fromkeys(found))
        return list(names)

    def redacted(self, endpoint: str, variant: str | None = None) -> set[str]:
        """The input fields every variant of ``endpoint`` (``variant`` alone when given)
        redacts in its capture: no drift run scores them (their captured values are hashes or
        nulls). Raises EndpointNotFound."""
        found: set[str] | None = None
        for v in self._get_endpoint(endpoint).config.variants:
            if variant is None or v.name == variant:
                names = {r.name for r in v.capture.redact}
                found = names if found is None else found & names
        return found or set()

    def classes(self, endpoint: str, variant: str | None = None) -> dict[str, PredictedClasses]:
        """What the model of each variant of ``endpoint`` (``variant`` alone when given)
        predicts, by model reference: a regressor, or its classes when its baseline tells.
        A baseline that cannot be read leaves the classes unknown. Raises EndpointNotFound."""
        from modelyard.monitoring.predicted_classes import predicted_classes

        found: dict[str, PredictedClasses] = {}
        for v in self._get_endpoint(endpoint).config.variants:
            if (variant is None or v.name == variant) and v.model_ref not in found:
                try:
                    baseline = self._baseline(v.model_ref)
                except ModelyardError:  # a missing or unreadable baseline tells nothing
                    baseline = None
                found[v.model_ref] = predicted_classes(self._get_version(v.model_ref), baseline)
        return found
