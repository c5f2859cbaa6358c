"""UTC timestamps in and out of the database."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware UTC: everything modelyard writes is UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were written as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
