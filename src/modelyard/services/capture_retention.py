"""Capture retention: captured rows deleted by age, by hand or by the scheduler loop.

Servers capturing 100 % of their requests write without end, so captured rows are kept for a
retention period (``MODELYARD_CAPTURE_RETENTION_D``; unset: until deleted by hand) and the
scheduler loop's hourly housekeeping deletes what is older. ``modelyard capture prune`` deletes
an endpoint's rows before a time at once (after an export, or when a privacy request asks).

Rows go by whole partition hour: a file is deleted when its partition's hour ends at or before
the cutoff, so every row in it is older than the cutoff; the hour the cutoff falls in is kept
whole. The hour comes from the file's path (``date=…/hour=…``), not from reading it, and files
outside partition folders are never touched. A cutoff in the future is refused (a slip of the
pen). Servers write an hour's last rows up to ``MODELYARD_CAPTURE_ROLL_S`` after it ends (and
at shutdown), so an hour that ended less than that (plus a minute) ago is kept whatever the
cutoff: the result says the cutoff that applied. Any number of prunes may run at once (each
scheduler loop runs one): a file another prune deleted first counts as deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from modelyard.domain import validate_name
from modelyard.domain.capture import partition_hour
from modelyard.domain.durations import point_in_time
from modelyard.errors import EndpointNotFound, InvalidInput, StorageNotWritable, StorageUnavailable
from modelyard.services.capture import StoredFileInfo

if TYPE_CHECKING:
    from modelyard.storage.base import EndpointStore

_HOUR = timedelta(hours=1)
_DAY = re.compile(r"date=\d{4}-\d{2}-\d{2}")


class PrunableFiles(Protocol):
    """The capture root as retention changes it (``storage.capture_files.CaptureFolder``)."""

    def folders(self, under: str = "") -> Sequence[str]:
        """The folders right under ``under`` (the root: one per endpoint that captured)."""
        ...

    def files(self, folder: str) -> Sequence[StoredFileInfo]:
        """Finished ``.parquet`` files under ``folder``, with paths relative to the root."""
        ...

    def remove(self, paths: Sequence[str]) -> None:
        """Delete files (and the folders they leave empty); one already gone is no error."""
        ...


@dataclass(frozen=True, slots=True)
class CapturePruned:
    """What a prune deleted (or, dry, would delete).

    Attributes:
        before: The cutoff that applied: rows of partition hours ending at or before it (the
            one asked for, or earlier when servers may still write the hours before it).
        endpoints: The endpoints looked at.
        files, size: Files deleted, and their bytes.
        hours: Partition hours emptied.
        dry_run: Nothing was deleted; the counts are what would be.
    """

    before: datetime
    endpoints: list[str]
    files: int
    size: int
    hours: int
    dry_run: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "before": self.before.isoformat(),
            "endpoints": self.endpoints,
            "files": self.files,
            "size": self.size,
            "hours": self.hours,
            "dry_run": self.dry_run,
        }


class CaptureRetention:
    """Deletes captured files by age (see the module docstring).

    Args:
        files: The capture root.
        retention: How long captured rows are kept by :meth:`prune_expired` (None: forever).
        settle: How long after an hour ends servers may still write its rows (their capture
            roll period plus a margin): hours that ended more recently are never deleted.
        now: The current time (injectable for tests).
        endpoints: The endpoints in the store, to refuse pruning an endpoint that never
            existed (a typo would otherwise report 0 files deleted, as if done); None:
            nothing is refused.
    """

    def __init__(
        self,
        files: PrunableFiles,
        retention: timedelta | None = None,
        settle: timedelta = timedelta(minutes=2),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        endpoints: EndpointStore | None = None,
    ) -> None:
        if retention is not None and retention <= timedelta(0):
            raise ValueError("a capture retention must be longer than 0")
        self._files = files
        self._endpoints = endpoints
        self.retention = retention
        self._settle = settle
        self._now = now

    def prune(
        self, endpoint: str | None, before: datetime | str, *, dry_run: bool = False
    ) -> CapturePruned:
        """Delete ``endpoint``'s captured files (every endpoint's when None) whose partition
        hour ends at or before ``before`` (no zone: UTC; text such as ``30d``: that long ago),
        and ended at least ``settle`` ago.

        Raises:
            InvalidName: a malformed endpoint name.
            EndpointNotFound: ``endpoint`` is not in the store and has no captured rows (a
                deleted endpoint's rows can be pruned).
            InvalidInput: ``before`` is in the future (nothing is deleted).
            StorageUnavailable, StorageNotWritable: the root cannot be listed, or a file
                cannot be deleted (the message says how many were deleted before it; the
                rest are kept).
        """
        now = self._now()
        cutoff = point_in_time(before, now, "before")
        if cutoff > now:
            raise InvalidInput(
                f"cannot delete captured rows before {cutoff.isoformat()}: that is in the "
                f"future (now {now.isoformat(timespec='seconds')}), and the current hour's "
                "rows are still being written"
            )
        cutoff = min(cutoff, now - self._settle)
        if endpoint is not None:
            validate_name(endpoint, "endpoint name")
            self._check_known(endpoint)
            endpoints = [endpoint]
        else:
            endpoints = list(self._files.folders())
        doomed = [
            stored
            for folder in self._old_days(endpoints, cutoff)
            for stored in self._files.files(folder)
            if _expired(stored.path, cutoff)
        ]
        hours: dict[str, list[str]] = {}
        for stored in doomed:
            hours.setdefault(stored.path.rpartition("/")[0], []).append(stored.path)
        if not dry_run:
            deleted = 0
            for paths in hours.values():  # an hour's files in one request
                try:
                    self._files.remove(paths)
                except (StorageNotWritable, StorageUnavailable) as exc:
                    told = f"{exc.message} (at least {deleted} files deleted before it)"
                    raise type(exc)(told) from None
                deleted += len(paths)
        return CapturePruned(
            cutoff, endpoints, len(doomed), sum(s.size for s in doomed), len(hours), dry_run
        )

    def _check_known(self, endpoint: str) -> None:
        if self._endpoints is None:
            return
        try:
            self._endpoints.history(endpoint)
        except EndpointNotFound:
            if not self._files.folders(endpoint):
                raise EndpointNotFound(
                    f"endpoint {endpoint!r} does not exist and has no captured rows"
                ) from None

    def _old_days(self, endpoints: Sequence[str], cutoff: datetime) -> list[str]:
        """The ``date=`` folders of ``endpoints`` that can hold hours ended by ``cutoff``: only
        those are listed file by file (a large root on an object store is mostly recent)."""
        if cutoff - datetime.min.replace(tzinfo=UTC) < _HOUR:
            return []  # no hour ended by then (and the hour before is out of range)
        last = f"date={(cutoff - _HOUR):%Y-%m-%d}"
        return [
            f"{name}/{day}"
            for name in endpoints
            for day in self._files.folders(name)
            if _DAY.fullmatch(day) and day <= last
        ]

    def prune_expired(self, now: datetime | None = None) -> CapturePruned | None:
        """Delete every endpoint's captured rows older than the retention (the scheduler
        loop's housekeeping); None when rows are kept forever."""
        if self.retention is None:
            return None
        return self.prune(None, (now or self._now()) - self.retention)


def _expired(path: str, cutoff: datetime) -> bool:
    hour = partition_hour(path)
    return hour is not None and hour + _HOUR <= cutoff
