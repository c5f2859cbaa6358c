"""``SqlMetricStore``: the per-minute metric series on SQLite or PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.storage.metric_series import MetricSeriesStore, Pruned
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import metric_series as t
from modelyard.storage.sql.timestamps import aware
from modelyard.storage.sql.upsert import dialect_insert

log = logging.getLogger("modelyard.storage")

MINUTE, HOUR = 60, 3600
_KEY = ["endpoint", "resolution_s", "period_start", "variant", "worker"]
_CHUNK_ROWS = 500  # rows per INSERT (SQLite allows 32766 bound values per statement)
_PRUNE_SPAN = timedelta(days=1)  # minutes downsampled per transaction
_PRUNE_LOCK = 0x6D6574726963  # "metric": PostgreSQL's advisory lock key of downsampling


def floor_hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _row(record: Any) -> SeriesRow:
    return SeriesRow(
        endpoint=record.endpoint,
        variant=record.variant,
        start=aware(record.period_start),
        resolution_s=int(record.resolution_s),
        worker=record.worker,
        stats=MetricStats.from_dict(record.stats),
    )


class SqlMetricStore(MetricSeriesStore):
    """A :class:`MetricSeriesStore` on an engine whose schema is already migrated.

    Args:
        minute_retention: How long minute rows are kept before they are merged into hours.
        hour_retention: How long hourly rows are kept.
        prune_every_s: :meth:`write` also prunes, at most this often per process (0: never;
            the monitor scheduler calls :meth:`prune` anyway).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        minute_retention: timedelta = timedelta(days=2),
        hour_retention: timedelta = timedelta(days=30),
        prune_every_s: float = 3600.0,
    ) -> None:
        self._engine = engine
        self.minute_retention = minute_retention
        self.hour_retention = hour_retention
        self._prune_every_s = prune_every_s
        self._pruned_at: float | None = None

    def write(self, rows: Sequence[SeriesRow]) -> None:
        with transaction(self._engine, write=True) as conn:
            self._upsert(conn, rows)
        self._maybe_prune()

    def _upsert(self, conn: Connection, rows: Sequence[SeriesRow]) -> None:
        # Sorted by key, so concurrent writers of the same rows lock them in the same order.
        values = sorted(
            (
                {
                    "endpoint": r.endpoint,
                    "resolution_s": r.resolution_s,
                    "period_start": r.start.astimezone(UTC),
                    "variant": r.variant,
                    "worker": r.worker,
                    "stats": r.stats.to_dict(),
                }
                for r in rows
            ),
            key=lambda v: tuple(str(v[k]) for k in _KEY),
        )
        for i in range(0, len(values), _CHUNK_ROWS):
            insert = dialect_insert(conn)(t).values(values[i : i + _CHUNK_ROWS])
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=_KEY, set_={"stats": insert.excluded.stats}
                )
            )

    def read(
        self, endpoint: str, *, variant: str | None, since: datetime, until: datetime
    ) -> list[SeriesRow]:
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        query = sa.select(t).where(
            t.c.endpoint == endpoint,
            t.c.period_start < until,
            sa.or_(
                sa.and_(t.c.resolution_s == MINUTE, t.c.period_start >= since),
                sa.and_(t.c.resolution_s == HOUR, t.c.period_start >= floor_hour(since)),
            ),
        )
        if variant is not None:
            query = query.where(t.c.variant == variant)
        with transaction(self._engine, write=False) as conn:
            records = conn.execute(query.order_by(t.c.period_start)).all()
        return [_row(r) for r in records]

    def prune(self, now: datetime) -> Pruned:
        minute_cutoff = floor_hour(now - self.minute_retention)
        merged = written = 0
        while True:
            with transaction(self._engine, write=True) as conn:
                done = self._downsample(conn, minute_cutoff)
            if done is None:
                break
            merged, written = merged + done[0], written + done[1]
        with transaction(self._engine, write=True) as conn:
            deleted = conn.execute(
                t.delete().where(
                    t.c.resolution_s == HOUR,
                    t.c.period_start < (now - self.hour_retention).astimezone(UTC),
                )
            ).rowcount
        return Pruned(merged, written, int(deleted or 0))

    def _downsample(self, conn: Connection, cutoff: datetime) -> tuple[int, int] | None:
        """Merge up to a day of the oldest minute rows before ``cutoff`` into hourly rows;
        ``(minutes merged, hours written)``, or None when none is left."""
        if conn.dialect.name == "postgresql":
            # Every server worker prunes, and the scheduler: one at a time, or two could each
            # merge the same minutes into an hour the other just wrote (counting them twice).
            # SQLite runs one write transaction at a time anyway.
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PRUNE_LOCK)))
        minutes = (t.c.resolution_s == MINUTE, t.c.period_start < cutoff)
        first = conn.execute(sa.select(sa.func.min(t.c.period_start)).where(*minutes)).scalar()
        if first is None:
            return None
        start = floor_hour(aware(first))
        end = min(cutoff, start + _PRUNE_SPAN)
        span = (t.c.period_start >= start, t.c.period_start < end)
        rows = [_row(r) for r in conn.execute(sa.select(t).where(*minutes, *span)).all()]
        hours: dict[tuple[str, str, datetime], MetricStats] = {}
        for row in rows:
            key = (row.endpoint, row.variant, floor_hour(row.start))
            hours.setdefault(key, MetricStats()).merge(row.stats)
        existing = conn.execute(sa.select(t).where(t.c.resolution_s == HOUR, *span)).all()
        for record in existing:
            key = (record.endpoint, record.variant, floor_hour(aware(record.period_start)))
            if key in hours:
                hours[key].merge(MetricStats.from_dict(record.stats))
        self._upsert(
            conn,
            [SeriesRow(e, v, h, HOUR, "", stats) for (e, v, h), stats in hours.items()],
        )
        conn.execute(t.delete().where(*minutes, *span))
        return len(rows), len(hours)

    def _maybe_prune(self) -> None:
        if not self._prune_every_s:
            return
        clock = time.monotonic()
        if self._pruned_at is not None and clock - self._pruned_at < self._prune_every_s:
            return
        self._pruned_at = clock
        try:
            self.prune(datetime.now(UTC))
        except Exception as exc:  # the write went through; the next prune will catch up
            log.warning("could not prune the metric series: %s", exc)
