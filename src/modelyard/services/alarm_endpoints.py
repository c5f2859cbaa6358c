"""What alarm rules need to know of an endpoint (its variants, its models' feature names and
whether they answer labels or numbers), read through the endpoint and registry services."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from modelyard.domain import Endpoint, ModelVersion


def features_of(
    refs: Iterable[str], get_version: Callable[[str], ModelVersion]
) -> list[str] | None:
    """The input feature names of the model versions ``refs`` (``model:N``), in order, each
    once; None when a signature does not name its inputs.

    Raises:
        NotFound: a version is gone.
    """
    names: dict[str, None] = {}
    for ref in dict.fromkeys(refs):
        signature = get_version(ref).signature
        found = signature.feature_names if signature is not None else None
        if found is None:
            return None
        names.update(dict.fromkeys(found))
    return list(names)


class EndpointCatalog:
    """The :class:`~modelyard.services.alarm_metrics.EndpointInfo` of the endpoints in the store.

    Args:
        get_endpoint: ``EndpointService.get`` (raises EndpointNotFound).
        get_version: ``RegistryService.get_version`` for a ``model:N`` reference.
    """

    def __init__(
        self,
        get_endpoint: Callable[[str], Endpoint],
        get_version: Callable[[str], ModelVersion],
    ) -> None:
        self._get_endpoint = get_endpoint
        self._get_version = get_version

    def variants(self, endpoint: str) -> list[str]:
        """The variant names of ``endpoint``'s current config. Raises EndpointNotFound."""
        return [v.name for v in self._get_endpoint(endpoint).config.variants]

    def features(self, endpoint: str) -> list[str] | None:
        """The input feature names of every model ``endpoint`` serves, in order, each once;
        None when a model's signature does not name its inputs. Raises EndpointNotFound."""
        refs = [v.model_ref for v in self._get_endpoint(endpoint).config.variants]
        return features_of(refs, self._get_version)

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

    def numeric_outputs(self, endpoint: str, variant: str | None = None) -> dict[str, bool]:
        """Whether the model of each variant of ``endpoint`` (``variant`` alone when given)
        answers numbers (a regressor, or a classifier's probabilities) rather than labels, by
        model reference; the servers count class shares of labels only, that is of outputs
        that are not floats. Raises EndpointNotFound."""
        from modelyard.domain.quality import Task
        from modelyard.monitoring.model_task import model_task

        found: dict[str, bool] = {}
        for v in self._get_endpoint(endpoint).config.variants:
            if (variant is None or v.name == variant) and v.model_ref not in found:
                task = model_task(self._get_version(v.model_ref))
                # A classifier's float column is a probability (or a float label the servers
                # read as a number too); without a signature's dtype, trust the task.
                found[v.model_ref] = task.output_kind == "f" or (
                    task.output_kind == "" and task.task is Task.REGRESSION
                )
        return found

    def single_output(self, endpoint: str, variant: str | None = None) -> bool:
        """Whether every model ``endpoint`` serves (``variant``'s alone when given) has a
        signature saying it answers one prediction column: a drift run then scores it as
        ``drift.prediction`` only, never per column. Raises EndpointNotFound."""
        refs = {
            v.model_ref
            for v in self._get_endpoint(endpoint).config.variants
            if variant is None or v.name == variant
        }
        signatures = [self._get_version(ref).signature for ref in refs]
        return bool(signatures) and all(
            s is not None and len(s.output_shape) == 1 for s in signatures
        )
