"""What the alarm service tests share: a per-minute series source they fill by hand, and a
rule made with defaults they override."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from modelyard.domain.metrics import MetricPoint
from tests.services.monitoring_parts import ENDPOINT, Parts

FIVE = timedelta(minutes=5)


class Series:
    """Per-minute points by (series name, variant), read as ``MetricsService.series`` does."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str | None], list[MetricPoint]] = {}
        self.reads: list[datetime | None] = []  # the ``until`` of every read
        self._lock = threading.Lock()

    def set(
        self, name: str, start: datetime, values: list[float | None], variant: str | None = None
    ) -> None:
        self.points[(name, variant)] = [
            MetricPoint(start + timedelta(minutes=i), v) for i, v in enumerate(values)
        ]

    def __call__(
        self,
        endpoint: str,
        name: str,
        *,
        variant: str | None = None,
        since: datetime,
        until: datetime | None = None,
    ) -> list[MetricPoint]:
        assert endpoint == ENDPOINT
        with self._lock:
            self.reads.append(until)
        found = self.points.get((name, variant), [])
        return [p for p in found if p.minute >= since and (until is None or p.minute < until)]


def create_rule(parts: Parts, series: Series | None = None, **kwargs: Any) -> Any:
    """Rule ``p99-high`` (or ``name``) on ``ENDPOINT``: latency_p99_ms > 100 unless told."""
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "metric": "latency_p99_ms",
        "comparison": ">",
        "threshold": 100.0,
    }
    fields.update(kwargs)
    name = fields.pop("name", "p99-high")
    return parts.alarms(series or Series()).create(name, **fields)
