"""Label retention: with ``MODELYARD_FEEDBACK_RETENTION_D`` set, the scheduler loop's hourly
housekeeping (``Platform.housekeeping``) deletes the labels of predictions served longer ago
than it, on every endpoint; unset, labels are kept. Real SQLite store, real platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain.feedback import GroundTruth
from modelyard.services.feedback import FeedbackService
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.feedback_store import SqlFeedbackStore

NOW = datetime.now(UTC).replace(microsecond=0)


def label(inference_id: str, days_ago: float, endpoint: str = "churn-api") -> GroundTruth:
    return GroundTruth(
        endpoint=endpoint,
        inference_id=inference_id,
        row=0,
        label=1,
        variant="blue",
        model="churn",
        model_version=1,
        served_at=NOW - timedelta(days=days_ago),
        prediction=0.8,
    )


def platform_with(tmp_path: Path, **env: str) -> Platform:
    return build(load_settings({f"MODELYARD_{k.upper()}": v for k, v in env.items()},
                               home=tmp_path / "home"))  # fmt: skip


def labels_of(platform: Platform) -> SqlFeedbackStore:
    """The platform's label store, on its own engine (the same database)."""
    return SqlFeedbackStore(make_engine(platform.settings.resolved_db_url))


def ids(platform: Platform, endpoint: str = "churn-api") -> list[str]:
    found = labels_of(platform).labels(endpoint, since=NOW - timedelta(days=400))
    return [t.inference_id for t in found]


def chores(platform: Platform, now: datetime) -> None:
    for chore in platform.housekeeping:
        chore(now)


def test_the_housekeeping_deletes_labels_older_than_the_retention(tmp_path: Path) -> None:
    platform = platform_with(tmp_path, feedback_retention_d="40")
    try:
        store = labels_of(platform)
        store.put([label("old", 41), label("kept", 39), label("other-old", 50, "fraud")])
        chores(platform, NOW)
        assert ids(platform) == ["kept"] and ids(platform, "fraud") == []
        chores(platform, NOW + timedelta(days=2))
        assert ids(platform) == []
    finally:
        platform.close()


def test_without_a_retention_labels_are_kept(tmp_path: Path) -> None:
    platform = platform_with(tmp_path)
    try:
        labels_of(platform).put([label("ancient", 365)])
        assert platform.feedback.prune_expired(NOW) is None
        chores(platform, NOW)
        assert ids(platform) == ["ancient"]
    finally:
        platform.close()


def test_a_retention_shorter_than_the_label_window_is_refused(tmp_path: Path) -> None:
    platform = platform_with(tmp_path)
    try:
        with pytest.raises(ValueError, match="at least a day longer"):
            FeedbackService(
                labels_of(platform),
                platform.capture,
                history=platform.endpoint_store.history,
                version=lambda ref: None,  # type: ignore[arg-type,return-value]
                max_age=timedelta(days=30),
                retention=timedelta(days=30),
            )
    finally:
        platform.close()
