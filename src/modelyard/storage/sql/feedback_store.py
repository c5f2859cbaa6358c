"""``SqlFeedbackStore``: ground-truth labels on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from modelyard.domain.feedback import GroundTruth
from modelyard.storage.feedback import FeedbackStore
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import feedback
from modelyard.storage.sql.timestamps import aware, store_clock
from modelyard.storage.sql.upsert import dialect_insert

_KEY = ("endpoint", "inference_id", "row")
#: Ids per ``IN (…)`` list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500


def _endpoints() -> sa.Select[Any]:
    """The distinct endpoint names of the labels, by a loose index scan: the first name, then
    again and again the first one after it (a recursive query), each one seek on the index
    that leads with the endpoint, so the cost grows with the endpoints, not with the labels
    (``SELECT DISTINCT`` reads every entry of the index on SQLite and PostgreSQL alike)."""
    later = feedback.alias("later")
    names = sa.select(sa.func.min(feedback.c.endpoint).label("name")).cte("names", recursive=True)
    following = (
        sa.select(sa.func.min(later.c.endpoint))
        .where(later.c.endpoint > names.c.name)
        .scalar_subquery()
    )
    names = names.union_all(sa.select(following).where(names.c.name.is_not(None)))
    return sa.select(names.c.name).where(names.c.name.is_not(None))


_ENDPOINTS = _endpoints()


def _truth(row: Row[Any]) -> GroundTruth:
    return GroundTruth(
        endpoint=row.endpoint,
        inference_id=row.inference_id,
        row=int(row.row),
        label=row.label,
        variant=row.variant,
        model=row.model,
        model_version=int(row.model_version),
        served_at=aware(row.served_at),
        prediction=row.prediction,
        received_at=aware(row.received_at),
    )


class SqlFeedbackStore(FeedbackStore):
    """A :class:`FeedbackStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, labels: Sequence[GroundTruth]) -> int:
        latest: dict[tuple[str, str, int], GroundTruth] = {}
        for label in labels:  # the last of a key wins, as a later request would
            latest[(label.endpoint, label.inference_id, label.row)] = label
        if not latest:
            return 0
        with transaction(self._engine, write=True) as conn:
            now = store_clock(conn)
            rows = [
                {
                    "endpoint": t.endpoint,
                    "inference_id": t.inference_id,
                    "row": t.row,
                    "label": t.label,
                    "variant": t.variant,
                    "model": t.model,
                    "model_version": t.model_version,
                    "served_at": t.served_at,
                    "prediction": t.prediction,
                    "received_at": now,
                }
                for t in latest.values()
            ]
            upsert = dialect_insert(conn)(feedback)
            replaced = {c: upsert.excluded[c] for c in rows[0] if c not in _KEY}
            conn.execute(upsert.on_conflict_do_update(index_elements=_KEY, set_=replaced), rows)
        return len(rows)

    def labels(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        variant: str | None = None,
    ) -> list[GroundTruth]:
        query = sa.select(feedback).where(
            feedback.c.endpoint == endpoint, feedback.c.served_at >= since
        )
        if until is not None:
            query = query.where(feedback.c.served_at < until)
        if variant is not None:
            query = query.where(feedback.c.variant == variant)
        query = query.order_by(feedback.c.served_at, feedback.c.inference_id, feedback.c.row)
        with transaction(self._engine, write=False) as conn:
            return [_truth(r) for r in conn.execute(query)]

    def get(self, endpoint: str, inference_ids: Sequence[str]) -> list[GroundTruth]:
        wanted = list(dict.fromkeys(inference_ids))
        found: list[GroundTruth] = []
        with transaction(self._engine, write=False) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = sa.select(feedback).where(
                    feedback.c.endpoint == endpoint, feedback.c.inference_id.in_(chunk)
                )
                found.extend(_truth(r) for r in conn.execute(query))
        return sorted(found, key=lambda t: (t.inference_id, t.row))

    def purge(self, endpoint: str | None, *, served_before: datetime) -> int:
        # Endpoint by endpoint, so that each delete walks the (endpoint, served_at) index
        # instead of the whole table (the scheduler loop purges every endpoint hourly). The
        # names are found one index seek each (``_endpoints``), not by a pass over every label.
        deleted = 0
        with transaction(self._engine, write=True) as conn:
            names = [endpoint] if endpoint is not None else conn.execute(_ENDPOINTS).scalars().all()
            for name in names:
                statement = feedback.delete().where(
                    feedback.c.endpoint == name, feedback.c.served_at < served_before
                )
                deleted += int(conn.execute(statement).rowcount or 0)
        return deleted
