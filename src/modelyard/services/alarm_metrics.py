"""Which names an alarm rule may watch on an endpoint, and the statistic each defaults to.

A metric series or drift score is refused when it does not exist, and when it could never
have a value for the endpoint (or the variant) watched: a feature its models do not take, a
feature's drift score where the capture redacts that field, a class share of regressors or of
a class no model predicts. Such a rule would stay INSUFFICIENT_DATA for good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from modelyard.domain.alarms import Statistic
from modelyard.domain.drift import (
    FEATURE_SCORE_PREFIX,
    PREDICTION_SCORE,
    SHARE_SCORE,
    feature_score,
)
from modelyard.domain.metrics import METRICS, MetricInfo, check_feature, split_name
from modelyard.errors import InvalidInput

#: Drift scores (``DriftReport.scores()``) start with this.
DRIFT_PREFIX = "drift."
#: The drift scores every endpoint has; the others are ``drift.feature.<feature>`` and, for a
#: model with several prediction columns, ``drift.prediction.<column>``.
DRIFT_SCORES = (SHARE_SCORE, PREDICTION_SCORE)
_PER_COLUMN = f"{PREDICTION_SCORE}."


#: Series of a feature's values, which the servers do not keep for a redacted field.
_VALUE_STATISTICS = frozenset({"input_mean", "input_min", "input_max", "input_text_length_mean"})


class EndpointInfo(Protocol):
    """What alarms need to know of an endpoint: its variants, its models' features and outputs."""

    def variants(self, endpoint: str) -> Sequence[str]:
        """The variant names of ``endpoint``'s current config. Raises EndpointNotFound."""
        ...

    def features(self, endpoint: str) -> Sequence[str] | None:
        """The input feature names of its models (None when no signature names them)."""
        ...

    def redacted(self, endpoint: str, variant: str | None = None) -> set[str]:
        """The input fields every variant (``variant`` alone when given) redacts in capture."""
        ...

    def numeric_outputs(self, endpoint: str, variant: str | None = None) -> Mapping[str, bool]:
        """Whether the model of every variant (``variant`` alone when given) answers numbers
        rather than labels, by model reference."""
        ...

    def single_output(self, endpoint: str, variant: str | None = None) -> bool:
        """Whether the model of every variant (``variant`` alone when given) is known, by its
        signature, to answer one prediction column."""
        ...


class AlarmMetrics:
    """The names rules may watch on the endpoints ``endpoints`` describes."""

    def __init__(self, endpoints: EndpointInfo) -> None:
        self._endpoints = endpoints

    def names(self, endpoint: str | None = None) -> list[str]:
        """Every name a rule may watch: the metric series, then the drift scores (with the
        features of ``endpoint``'s models when given)."""
        names = [_shown(name, info) for name, info in METRICS.items()] + list(DRIFT_SCORES)
        features = self._endpoints.features(endpoint) if endpoint is not None else None
        if features is None:
            return [*names, feature_score("<feature>")]
        return names + [feature_score(f) for f in features]

    def check(self, endpoint: str, metric: str, variant: str | None = None) -> Statistic:
        """The metric's default statistic, once it is known to exist for ``endpoint``: a
        feature it names must be an input of the endpoint's models (when their signatures
        name them), and a feature's drift score one its capture keeps (not redacted)."""
        if metric.startswith(DRIFT_PREFIX):
            if metric.startswith(FEATURE_SCORE_PREFIX):
                feature = metric.removeprefix(FEATURE_SCORE_PREFIX)
                features = self._endpoints.features(endpoint)
                if feature and feature in self._endpoints.redacted(endpoint, variant):
                    raise InvalidInput(
                        f"drift score {metric!r} never has a value: {feature!r} is redacted "
                        f"in the capture of {_whose(endpoint, variant)}, so drift runs do not "
                        "compare it"
                    )
                if feature and (features is None or feature in features):
                    return Statistic.MAX
            elif metric in DRIFT_SCORES:
                return Statistic.MAX
            elif metric.startswith(_PER_COLUMN) and len(metric) > len(_PER_COLUMN):
                if self._endpoints.single_output(endpoint, variant):
                    raise InvalidInput(
                        f"drift score {metric!r} never has a value: {_served(endpoint, variant)} "
                        f"serves models of one prediction column, scored as {PREDICTION_SCORE!r}"
                    )
                return Statistic.MAX
            problem = f"unknown drift score {metric!r} for endpoint {endpoint!r}"
        else:
            try:
                base, qualifier = split_name(metric)
            except InvalidInput as exc:
                problem = exc.message.split("; known:")[0]
            else:
                info = METRICS[base]
                if info.qualifier == "class" and qualifier is not None:
                    self._check_class(endpoint, metric, qualifier, variant)
                    return Statistic(info.aggregation)
                try:
                    check_feature(endpoint, metric, self._endpoints.features(endpoint))
                except InvalidInput as exc:
                    problem = exc.message
                else:
                    if base in _VALUE_STATISTICS and qualifier in self._endpoints.redacted(
                        endpoint, variant
                    ):
                        raise InvalidInput(
                            f"metric {metric!r} never has a value: {qualifier!r} is redacted "
                            f"in the capture of {_whose(endpoint, variant)}, so the servers "
                            "count its values but keep none of them"
                        )
                    return Statistic(info.aggregation)
        raise InvalidInput(f"{problem}; known: {', '.join(self.names(endpoint))}")

    def _check_class(self, endpoint: str, metric: str, name: str, variant: str | None) -> None:
        """Refuse a class share that never has a value: every model watched has numbers for
        output (a regressor, or a classifier answering probabilities), which the servers do
        not count classes of. A class absent from a baseline's predictions is taken: a sample
        may miss the rare class one most wants to watch."""
        models = self._endpoints.numeric_outputs(endpoint, variant)
        numeric = [ref for ref, numbers in models.items() if numbers]
        if models and len(numeric) == len(models):
            raise InvalidInput(
                f"metric {metric!r} never has a value: {_served(endpoint, variant)} serves "
                f"{_numeric(numeric)} numbers (values or probabilities), not class labels"
            )


def _shown(name: str, info: MetricInfo) -> str:
    if info.qualifier is None:
        return name
    if info.qualifier_required:
        return f"{name}.<{info.qualifier}>"
    return f"{name}[.<{info.qualifier}>]"


def _numeric(refs: Sequence[str]) -> str:
    if len(refs) == 1:
        return f"{refs[0]}, whose output is"
    return f"{', '.join(refs)}, whose outputs are"


def _served(endpoint: str, variant: str | None) -> str:
    return f"variant {variant!r} of {endpoint!r}" if variant else f"endpoint {endpoint!r}"


def _whose(endpoint: str, variant: str | None) -> str:
    return f"variant {variant!r} of {endpoint!r}" if variant else f"every variant of {endpoint!r}"
