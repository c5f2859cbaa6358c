"""Per-minute metric series of endpoints: the catalog of series names, the points a series is
made of, and the port through which server workers write them.

Each server worker sums what it serves into one :class:`~modelyard.domain.metric_stats.MetricStats`
per endpoint, variant and minute, and writes them as :class:`SeriesRow` s through a
:class:`MetricSeriesSink` (wired by ``bootstrap``; the data plane knows no store). A series value
is computed from the accumulators of all workers (and, without a variant, all variants) merged:
:func:`series_value`.

Series names are the catalog's (:data:`METRICS`); those about one feature or one class take it
after a dot: ``input_mean.age``, ``class_share.churned`` (``input_missing_fraction`` alone is
over every feature).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from modelyard.domain.metric_stats import MetricStats
from modelyard.errors import InvalidInput

Aggregation = Literal["sum", "mean", "min", "max"]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One series of the catalog.

    Attributes:
        description: What a value is, in one line.
        unit: ``requests``, ``ms``, ``bytes``, ``fraction``, ``seconds``, ``rows``, ``value``
            (the feature's or prediction's own unit) …
        aggregation: How its per-minute values summarise a longer window (``sum`` for counts,
            ``mean``, ``min``, ``max``); what a chart's total line and a downsampled view use.
        qualifier: ``"feature"`` or ``"class"`` when the name takes one after a dot.
        qualifier_required: Whether the bare name (without one) is refused.
    """

    description: str
    unit: str
    aggregation: Aggregation
    qualifier: str | None = None
    qualifier_required: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "description": self.description,
            "unit": self.unit,
            "aggregation": self.aggregation,
            "qualifier": self.qualifier,
        }


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One minute of a series: ``value`` None when that minute has no data.

    Minutes older than the store's minute retention are kept per hour: such a point stands for
    the hour that starts at ``minute``.
    """

    minute: datetime
    value: float | None

    def to_dict(self) -> dict[str, object]:
        return {"minute": self.minute.isoformat(), "value": self.value}


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """What one worker (or, once downsampled, everyone) served of one endpoint variant in one
    period: a minute (``resolution_s`` 60) or an hour (3600) starting at ``start`` (UTC).

    ``worker`` names the writer (``host:pid:start``); an hourly row merged from every worker's
    minutes has ``""``.
    """

    endpoint: str
    variant: str
    start: datetime
    resolution_s: int
    worker: str
    stats: MetricStats


class MetricSeriesSink(Protocol):
    """Where a server worker writes its per-minute stats (the data plane's port)."""

    def write(self, rows: Sequence[SeriesRow]) -> None:
        """Store ``rows``, each replacing the row of the same endpoint, variant, start,
        resolution and worker (a worker rewrites its current minute as it fills).

        Raises:
            StorageUnavailable: the store cannot be written now (nothing is written).
        """
        ...


def _ratio(
    num: str, den: str, scale: float = 1.0, *, kept: bool = False
) -> Callable[[MetricStats, str | None], float | None]:
    """``num / den``; with ``kept``, None when there is no ``num`` at all: the minute's
    values were not numbers (a classifier's labels) or their sum could not be stored (an
    infinite prediction), and 0 would be a mean nobody served."""

    def value(stats: MetricStats, _: str | None) -> float | None:
        if kept and num not in stats.sums:
            return None
        ratio = stats.ratio(num, den)
        return None if ratio is None else ratio * scale

    return value


def _count(key: str) -> Callable[[MetricStats, str | None], float | None]:
    return lambda stats, _: stats.total(key)


def _extreme(table: str, key: str) -> Callable[[MetricStats, str | None], float | None]:
    return lambda stats, q: getattr(stats, table).get(key if q is None else f"{key}.{q}")


def _quantile(q: float) -> Callable[[MetricStats, str | None], float | None]:
    def value(stats: MetricStats, _: str | None) -> float | None:
        seconds = stats.latency_quantile(q)
        return None if seconds is None else seconds * 1000.0

    return value


def _missing(stats: MetricStats, feature: str | None) -> float | None:
    if feature is not None:
        missing = stats.sums.get(f"in.miss.{feature}", 0.0)
        present = stats.sums.get(f"in.n.{feature}", 0.0)
    else:
        missing = sum(v for k, v in stats.sums.items() if k.startswith("in.miss."))
        present = sum(v for k, v in stats.sums.items() if k.startswith("in.n."))
    total = missing + present
    return missing / total if total else None


def _feature_ratio(num: str, den: str) -> Callable[[MetricStats, str | None], float | None]:
    # No numerator at all: not kept (a redacted field's values are counted, never summed).
    return lambda stats, f: (
        stats.ratio(f"{num}.{f}", f"{den}.{f}") if f"{num}.{f}" in stats.sums else None
    )


def _class_share(stats: MetricStats, name: str | None) -> float | None:
    total = sum(v for k, v in stats.sums.items() if k.startswith("class."))
    return stats.sums.get(f"class.{name}", 0.0) / total if total else None


_Value = Callable[[MetricStats, str | None], float | None]
_CATALOG: dict[str, tuple[MetricInfo, _Value]] = {
    "requests": (
        MetricInfo("requests answered, any status", "requests", "sum"),
        _count("requests"),
    ),
    "errors": (
        MetricInfo("requests answered with an error (4xx or 5xx)", "requests", "sum"),
        _count("errors"),
    ),
    "server_errors": (
        MetricInfo("requests answered with a server error (5xx)", "requests", "sum"),
        _count("server_errors"),
    ),
    "error_rate": (
        MetricInfo("errors / requests", "fraction", "mean"),
        _ratio("errors", "requests"),
    ),
    "latency_mean_ms": (
        MetricInfo("mean time from choosing the variant to the answer", "ms", "mean"),
        _ratio("latency_s", "requests", 1000.0),
    ),
    "latency_p50_ms": (MetricInfo("median latency", "ms", "max"), _quantile(0.5)),
    "latency_p90_ms": (MetricInfo("90th percentile latency", "ms", "max"), _quantile(0.9)),
    "latency_p99_ms": (MetricInfo("99th percentile latency", "ms", "max"), _quantile(0.99)),
    "request_bytes_mean": (
        MetricInfo("mean request body size", "bytes", "mean"),
        _ratio("request_bytes", "request_bytes.n"),
    ),
    "response_bytes_mean": (
        MetricInfo("mean response body size", "bytes", "mean"),
        _ratio("response_bytes", "response_bytes.n"),
    ),
    "rows": (MetricInfo("input rows predicted", "rows", "sum"), _count("rows")),
    "rows_per_request": (
        MetricInfo("mean input rows per request", "rows", "mean"),
        _ratio("rows", "io_requests"),
    ),
    "batches": (MetricInfo("model calls (micro-batches)", "batches", "sum"), _count("batches")),
    "batch_rows_mean": (
        MetricInfo("mean rows per model call", "rows", "mean"),
        _ratio("batch_rows", "batches"),
    ),
    "inflight_max": (
        MetricInfo("most requests in flight at once in one worker", "requests", "max"),
        _extreme("highs", "inflight"),
    ),
    "cpu_seconds": (
        MetricInfo("CPU time of the server workers", "seconds", "sum"),
        _count("cpu_s"),
    ),
    "memory_max_bytes": (
        MetricInfo("resident memory of the largest worker", "bytes", "max"),
        _extreme("highs", "memory_bytes"),
    ),
    "model_load_seconds": (
        MetricInfo("time a worker took to load and warm the variant's model", "seconds", "max"),
        _extreme("highs", "load_s"),
    ),
    "repeated_fraction": (
        MetricInfo(
            "share of requests whose rows a worker answered earlier within its window",
            "fraction",
            "mean",
        ),
        _ratio("repeated", "io_requests"),
    ),
    "input_missing_fraction": (
        MetricInfo("share of input values missing (NaN, null)", "fraction", "mean", "feature"),
        _missing,
    ),
    "input_mean": (
        MetricInfo("mean of a feature's present values", "value", "mean", "feature", True),
        _feature_ratio("in.sum", "in.n"),
    ),
    "input_min": (
        MetricInfo("smallest value of a feature", "value", "min", "feature", True),
        _extreme("lows", "in"),
    ),
    "input_max": (
        MetricInfo("largest value of a feature", "value", "max", "feature", True),
        _extreme("highs", "in"),
    ),
    "input_text_length_mean": (
        MetricInfo("mean length of a text feature", "characters", "mean", "feature", True),
        _feature_ratio("txt.len", "txt.n"),
    ),
    "output_missing_fraction": (
        MetricInfo("share of predictions that are NaN or null", "fraction", "mean"),
        lambda s, _: (
            s.sums.get("out.miss", 0.0) / t
            if (t := s.sums.get("out.miss", 0.0) + s.sums.get("out.n", 0.0))
            else None
        ),
    ),
    "prediction_mean": (
        MetricInfo("mean numeric prediction", "value", "mean"),
        _ratio("out.sum", "out.n", kept=True),
    ),
    "prediction_min": (
        MetricInfo("smallest numeric prediction", "value", "min"),
        _extreme("lows", "out"),
    ),
    "prediction_max": (
        MetricInfo("largest numeric prediction", "value", "max"),
        _extreme("highs", "out"),
    ),
    "class_share": (
        MetricInfo("share of predictions of one class", "fraction", "mean", "class", True),
        _class_share,
    ),
}

#: The catalog of series names: name → what it is.
METRICS: Mapping[str, MetricInfo] = {name: info for name, (info, _) in _CATALOG.items()}


#: Series whose value moves with the traffic a variant gets (counts, and what load drives:
#: batch sizes, requests in flight) or that describe a worker rather than a variant.
TRAFFIC_BOUND = frozenset(
    {
        "requests",
        "errors",
        "server_errors",
        "rows",
        "batches",
        "batch_rows_mean",
        "inflight_max",
        "cpu_seconds",
        "memory_max_bytes",
    }
)


def reads_alike_on_a_share(name: str) -> bool:
    """Whether series ``name`` reads for a share of an endpoint's traffic as it does for the
    whole: a rate, a mean, a percentile or an extreme of values (``error_rate``,
    ``latency_p99_ms``, ``input_mean.age``), not a count or what load drives
    (:data:`TRAFFIC_BOUND`); a drift score or an unknown name is not."""
    base = name.partition(".")[0]
    return base in _CATALOG and base not in TRAFFIC_BOUND


def split_name(name: str) -> tuple[str, str | None]:
    """``"input_mean.age"`` → ``("input_mean", "age")``, checked against the catalog.

    Raises:
        InvalidInput: an unknown series, a qualifier where none is taken, or a missing one.
    """
    base, dot, qualifier = name.partition(".")
    entry = _CATALOG.get(base)
    if entry is None:
        raise InvalidInput(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    info = entry[0]
    if dot and (info.qualifier is None or not qualifier):
        what = f"a {info.qualifier} after the dot" if info.qualifier else "no qualifier"
        raise InvalidInput(f"metric {name!r}: {base} takes {what}")
    if not dot and info.qualifier_required:
        raise InvalidInput(f"metric {name!r} needs a {info.qualifier}: {base}.<{info.qualifier}>")
    return base, (qualifier if dot else None)


def check_feature(endpoint: str, name: str, features: Sequence[str] | None) -> None:
    """Refuse series ``name`` when it is about an input feature that ``endpoint``'s models do
    not take: ``features`` are their feature names (None when a signature does not name them:
    then any feature is taken). Such a series never has a value.

    Raises:
        InvalidInput: naming the feature and the endpoint's features; what :func:`split_name`
            raises.
    """
    base, qualifier = split_name(name)
    if METRICS[base].qualifier != "feature" or qualifier is None or features is None:
        return
    if qualifier not in features:
        raise InvalidInput(
            f"metric {name!r}: endpoint {endpoint!r} has no input feature {qualifier!r} "
            f"(its features: {', '.join(features)})"
        )


def series_value(stats: MetricStats, name: str) -> float | None:
    """The value of series ``name`` for one period's merged ``stats`` (None: no data, or no
    finite number: a value that is infinite because an input was; a mean of finite values
    is always one, however large their sum, see ``metric_stats``).

    Raises:
        InvalidInput: ``name`` is not a catalog series (see :func:`split_name`).
    """
    base, qualifier = split_name(name)
    value = _CATALOG[base][1](stats, qualifier)
    return value if value is None or math.isfinite(value) else None
