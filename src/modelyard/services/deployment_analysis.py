"""The comparison behind each step: the new variants against the old ones **over the same
window**, so an error of the old fleet never blames the new one.

- ``requests``: each side needs ``min_requests`` in the window; fewer (none included) is
  INCONCLUSIVE, and then the other checks are too: they never pass, or fail, on a handful.
- ``error_rate``: answers with an error (4xx or 5xx: a new model that refuses what the old one
  took fails here too) compared by a one-sided two-proportion z-test; FAIL when the new rate
  is higher with a p-value below ``alpha``.
- ``latency_p99``: the p99 of the merged latency histograms as a ratio new / old; FAIL when it
  is above ``max_latency_ratio`` and the difference above ``latency_floor_ms``.

While the new config takes all the traffic (the bake) the old side has none in the window: the
new side is then compared with what the old variants served before the switch (a window of the
step's length, at least a minute, ending when the traffic moved), the bake being the only
watched time of a blue/green deployment. With too few requests there (an endpoint that had
little traffic), only ``requests`` applies (the named alarms watch the rest).

Counts come from the per-minute series rows the servers write (every worker's, summed), read
from the minute holding the window's start up to its end.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from modelyard.domain.deployment_decisions import Check, Verdict
from modelyard.domain.deployments import Analysis
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow

_MINUTE_S = 60


class RowReader(Protocol):
    """Reads the series rows of an endpoint (``MetricSeriesStore.read``)."""

    def __call__(
        self, endpoint: str, *, variant: str | None, since: datetime, until: datetime
    ) -> Sequence[SeriesRow]: ...


@dataclass(frozen=True, slots=True)
class Side:
    """What one side (old or new variants) served in the window."""

    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @classmethod
    def of(cls, stats: MetricStats) -> Side:
        p99 = stats.latency_quantile(0.99)
        return cls(
            int(stats.sums.get("requests", 0)),
            int(stats.sums.get("errors", 0)),
            None if p99 is None else p99 * 1000,
        )


def read_sides(
    rows: Sequence[SeriesRow], old: Collection[str], new: Collection[str]
) -> tuple[Side, Side]:
    """The old and the new side of ``rows`` (minute rows of the variants named)."""
    olds, news = MetricStats(), MetricStats()
    for row in rows:
        if row.resolution_s != _MINUTE_S:
            continue  # an hourly row covers more than the window
        if row.variant in old:
            olds.merge(row.stats)
        elif row.variant in new:
            news.merge(row.stats)
    return Side.of(olds), Side.of(news)


def floor_minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def one_sided_p(new_errors: int, new_n: int, old_errors: int, old_n: int) -> tuple[float, float]:
    """The two-proportion z statistic (new minus old) and its one-sided p-value (the chance of
    a new rate this much higher if both rates were equal). Equal rates of 0 or 1 give z 0."""
    pooled = (new_errors + old_errors) / (new_n + old_n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / new_n + 1 / old_n))
    if spread == 0:
        return 0.0, 0.5
    z = (new_errors / new_n - old_errors / old_n) / spread
    return z, 0.5 * math.erfc(z / math.sqrt(2))


def compare(
    new: Side, old: Side | None, analysis: Analysis, before: Side | None = None
) -> tuple[Check, ...]:
    """The checks of one window; ``old`` None while the old config serves nothing: then
    ``before``, what the old variants served before the switch, stands in for it when it has
    the minimum of requests."""
    need = analysis.min_requests
    when = ""
    if old is None and before is not None:
        if before.requests < need:
            requests = _requests_of_new(new, need)
            why = (
                "the old config serves no traffic at this step, and served only "
                f"{before.requests} request(s) before the switch ({need} needed): nothing to "
                "compare with"
            )
            untested = Check("error_rate", Verdict.NOT_APPLICABLE, why)
            return requests, untested, Check("latency_p99", Verdict.NOT_APPLICABLE, why)
        old, when = before, " before the switch"
    short = [
        (label, side.requests)
        for label, side in (("new", new), ("old", old))
        if side is not None and side.requests < need
    ]
    counts = {"new_requests": new.requests, "min_requests": need}
    if old is not None:
        counts["old_requests"] = old.requests
    if short:
        said = " and ".join(f"{n} request(s) reached the {label} variants" for label, n in short)
        requests = Check("requests", Verdict.INCONCLUSIVE, f"only {said}; {need} needed", counts)
        return (requests, *_untested(old))
    requests = Check("requests", Verdict.PASS, f"{need} or more requests on each side", counts)
    if old is None:
        return (requests, *_untested(old))
    return requests, _errors(new, old, analysis, when), _latency(new, old, analysis, when)


def _requests_of_new(new: Side, need: int) -> Check:
    counts = {"new_requests": new.requests, "min_requests": need}
    if new.requests < need:
        said = f"only {new.requests} request(s) reached the new variants; {need} needed"
        return Check("requests", Verdict.INCONCLUSIVE, said, counts)
    return Check("requests", Verdict.PASS, f"{need} or more requests on the new variants", counts)


def _untested(old: Side | None) -> tuple[Check, ...]:
    if old is None:
        why = "the old config serves no traffic at this step: nothing to compare with"
        verdict = Verdict.NOT_APPLICABLE
    else:
        why = "the error rate and the p99 latency are not tested: too few requests"
        verdict = Verdict.INCONCLUSIVE
    return Check("error_rate", verdict, why), Check("latency_p99", verdict, why)


def _errors(new: Side, old: Side, analysis: Analysis, when: str) -> Check:
    z, p = one_sided_p(new.errors, new.requests, old.errors, old.requests)
    values = {
        "new_errors": new.errors,
        "new_requests": new.requests,
        "new_rate": new.error_rate,
        "old_errors": old.errors,
        "old_requests": old.requests,
        "old_rate": old.error_rate,
        "z": round(z, 4),
        "p_value": p,
        "alpha": analysis.alpha,
    }
    rates = f"new {_pct(new.error_rate)} vs old {_pct(old.error_rate)}{when} (p={p:.2g})"
    if p < analysis.alpha and z > 0:
        return Check("error_rate", Verdict.FAIL, f"error rate higher: {rates}", values)
    return Check("error_rate", Verdict.PASS, f"error rate not higher: {rates}", values)


def _latency(new: Side, old: Side, analysis: Analysis, when: str) -> Check:
    if new.p99_ms is None or old.p99_ms is None or old.p99_ms <= 0:
        return Check("latency_p99", Verdict.INCONCLUSIVE, "no latency recorded")
    ratio = new.p99_ms / old.p99_ms
    values = {
        "new_p99_ms": round(new.p99_ms, 3),
        "old_p99_ms": round(old.p99_ms, 3),
        "ratio": round(ratio, 4),
        "max_ratio": analysis.max_latency_ratio,
        "floor_ms": analysis.latency_floor_ms,
    }
    said = f"p99 new {new.p99_ms:.3g} ms vs old {old.p99_ms:.3g} ms{when} (x{ratio:.2f})"
    slower = new.p99_ms - old.p99_ms > analysis.latency_floor_ms
    if ratio > analysis.max_latency_ratio and slower:
        return Check("latency_p99", Verdict.FAIL, f"slower: {said}", values)
    return Check("latency_p99", Verdict.PASS, said, values)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"
