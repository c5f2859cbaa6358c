"""What the services that read captured rows (drift, feedback) need of the capture service:
one protocol, implemented by :class:`~modelyard.services.capture.CaptureService`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd


class CaptureReader(Protocol):
    """Captured rows of an endpoint, by time window or by inference id."""

    def read(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        variant: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows captured in [since, until) (see ``CaptureService.read``)."""
        ...

    def read_readable(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        variant: str | None = None,
    ) -> tuple[pd.DataFrame, list[str]]:
        """The rows captured in [since, until), leaving out damaged files, each named with
        why (see ``CaptureService.read_readable``)."""
        ...

    def find(
        self,
        endpoint: str,
        inference_ids: Collection[str],
        *,
        spans: Sequence[tuple[datetime, datetime]],
        columns: Sequence[str],
        skipped: list[str] | None = None,
        key: str = "inference_id",
    ) -> pd.DataFrame:
        """The rows whose inference id (in column ``key``: ours, or ``caller_inference_id``)
        is one of ``inference_ids`` captured in any of ``spans`` ([start, end) each), with
        ``columns`` only, in one pass over the files; with ``skipped``, damaged files left out
        and named there (see ``CaptureService.find``)."""
        ...
