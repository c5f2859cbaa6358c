"""One worker's per-minute series: accumulated by the drain thread, written by a flush thread.

The drain thread adds each interval's numbers into the current minute's
:class:`~modelyard.domain.metric_stats.MetricStats` of each endpoint variant. Every ``flush_s``
the flush thread writes the minutes that changed through the sink, each row replacing this
worker's previous row of that minute (so rewriting a minute as it fills, or retrying a write,
never counts twice). Minutes that are over and written are forgotten. A store that cannot be
written is retried at the next flush (logged once per outage); if it stays away, the oldest
minutes are dropped beyond :data:`MAX_MINUTES`. The last flush happens at shutdown.

A minute is over only once a drain has added to a later one, not when the flush thread's clock
has passed it: a drain reads its clock before it folds, so one that began just before the
minute turned adds to that minute after a flush that already saw the next one. Forgotten
then, the minute would come back holding that drain's numbers alone, and its next write
would replace the worker's whole row of it (a minute losing its earlier requests). Drains run
one at a time, each reading the clock after the last one added, so none adds to a minute
before the latest one a drain added to.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import MetricSeriesSink, SeriesRow

log = logging.getLogger("modelyard.serving")

#: Minute stats kept unwritten at most (endpoint variants x minutes).
MAX_MINUTES = 20_000

_Key = tuple[str, str, int]  # endpoint, variant, minute (Unix seconds)


def minute_of(wall_s: float) -> int:
    """The Unix time of the start of the minute holding ``wall_s``."""
    return int(wall_s // 60) * 60


class MinuteSeries:
    """Per-minute stats of one worker, by endpoint and variant (thread-safe)."""

    def __init__(self, sink: MetricSeriesSink, worker: str) -> None:
        self._sink = sink
        self.worker = worker
        self._lock = threading.Lock()
        self._minutes: dict[_Key, MetricStats] = {}
        self._dirty: set[_Key] = set()
        self._failing = False
        self._newest = 0  # the latest minute a drain added to
        self.writes = 0  # successful flushes that wrote something (for tests)

    def __len__(self) -> int:
        """Minutes held, written or not."""
        with self._lock:
            return len(self._minutes)

    def update(self, minute: int, changes: dict[tuple[str, str], MetricStats]) -> None:
        """Merge one drain interval's stats (by endpoint and variant) into ``minute``."""
        with self._lock:
            for (endpoint, variant), stats in changes.items():
                key = (endpoint, variant, minute)
                current = self._minutes.get(key)
                if current is None:
                    self._minutes[key] = stats.copy()
                else:
                    current.merge(stats)
                self._dirty.add(key)
            self._newest = max(self._newest, minute)
            if len(self._minutes) > MAX_MINUTES:
                oldest = sorted(self._minutes, key=lambda k: k[2])[: len(self._minutes) // 10]
                for key in oldest:
                    del self._minutes[key]
                    self._dirty.discard(key)
                log.warning("dropped %s unwritten minutes of metrics", len(oldest))

    def flush(self, now_s: float) -> bool:
        """Write the minutes changed since the last flush; whether the store took them.

        Never raises: a failure is logged once (until a flush succeeds again) and retried.
        """
        with self._lock:
            keys = list(self._dirty)
            rows = [
                SeriesRow(
                    endpoint=k[0],
                    variant=k[1],
                    start=datetime.fromtimestamp(k[2], UTC),
                    resolution_s=60,
                    worker=self.worker,
                    stats=self._minutes[k].copy(),
                )
                for k in keys
            ]
            self._dirty.clear()
        if not rows:
            return True
        try:
            self._sink.write(rows)
        except Exception as exc:
            with self._lock:
                self._dirty.update(k for k in keys if k in self._minutes)
            if not self._failing:
                self._failing = True
                log.warning("could not write the metric series to the store (retrying): %s", exc)
            return False
        if self._failing:
            self._failing = False
            log.info("writing the metric series to the store again")
        self.writes += 1
        with self._lock:
            # Over: before the clock's minute and before the latest a drain added to (see the
            # module docstring). Every written minute is a candidate, not only this flush's:
            # one kept at an earlier flush (no drain past it yet) is forgotten here.
            over = min(minute_of(now_s), self._newest)
            for key in [k for k in self._minutes if k[2] < over and k not in self._dirty]:
                del self._minutes[key]
        return True
