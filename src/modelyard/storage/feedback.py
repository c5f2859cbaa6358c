"""The storage contract of ground truth: labels joined with the predictions they label.
Services depend on it; ``bootstrap`` picks the SQL implementation
(``storage/sql/feedback_store.py``). Every implementation passes
``tests/storage/test_feedback_store.py``.

Every method is one transaction: it fully applies or changes nothing, and database errors
surface as :class:`~modelyard.errors.StorageUnavailable` subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from modelyard.domain.feedback import GroundTruth


class FeedbackStore(ABC):
    """Labels keyed by ``(endpoint, inference_id, row)``; a label put again replaces the
    earlier one (the latest truth wins), with its new ``received_at``."""

    @abstractmethod
    def put(self, labels: Sequence[GroundTruth]) -> int:
        """Store ``labels``, replacing any stored under the same key; all or none.

        Within ``labels`` the last one of a key wins. ``received_at`` is set to the store's
        clock for every label (the value given is ignored).

        Returns:
            How many labels were stored.
        """

    @abstractmethod
    def labels(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        variant: str | None = None,
    ) -> list[GroundTruth]:
        """The labels of predictions ``endpoint`` served in ``[since, until)`` (``until``
        None: no end), of one ``variant`` or all, ordered by ``served_at``, inference id, row."""

    @abstractmethod
    def get(self, endpoint: str, inference_ids: Sequence[str]) -> list[GroundTruth]:
        """The labels stored for these inference ids of ``endpoint`` (every row of each),
        ordered by inference id and row; ids without labels are left out."""

    @abstractmethod
    def purge(self, endpoint: str | None, *, served_before: datetime) -> int:
        """Delete the labels of predictions served before ``served_before`` (of one endpoint,
        or of all when ``endpoint`` is None); how many were deleted."""
