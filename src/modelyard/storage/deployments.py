"""The storage contract of guarded deployments: each deployment's state, its step history and
its decision log. The services (``services/deployments.py``, the controller) depend on this;
``bootstrap`` picks the SQL implementation (``storage/sql/deployment_store.py``).

Every method is one transaction: it fully applies or changes nothing, and database errors
surface as :class:`~modelyard.errors.StorageUnavailable` subclasses. Every change of a
deployment is a compare-and-set on its ``version``, so of two writers that read the same
version one wins and the other gets :class:`~modelyard.errors.Conflict`. An endpoint has at
most one active (RUNNING or PAUSED) deployment, even against concurrent starts. Every
implementation passes ``tests/storage/test_deployment_store.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from modelyard.domain.deployment_decisions import Decision
from modelyard.domain.deployments import Deployment, StepRecord


class DeploymentStore(ABC):
    """Deployments, their steps and their decisions."""

    @abstractmethod
    def create(self, deployment: Deployment) -> Deployment:
        """Store a new deployment (its ``id`` and ``version`` are assigned here).

        Raises:
            Conflict: the endpoint has an active deployment (even one started concurrently);
                the message names it.
        """

    @abstractmethod
    def get(self, deployment_id: int) -> Deployment:
        """Raises NotFound."""

    @abstractmethod
    def latest(self, endpoint: str) -> Deployment | None:
        """The newest deployment of ``endpoint``, or None."""

    @abstractmethod
    def list_deployments(self, endpoint: str | None = None, limit: int = 100) -> list[Deployment]:
        """Deployments (of ``endpoint`` only, when given), newest first."""

    @abstractmethod
    def active(self) -> list[Deployment]:
        """Every RUNNING or PAUSED deployment, oldest first."""

    @abstractmethod
    def save(
        self,
        deployment: Deployment,
        *,
        decision: Decision | None = None,
        start_step: StepRecord | None = None,
        end_step: tuple[int, str, datetime] | None = None,
    ) -> Deployment:
        """Write ``deployment``'s changeable fields (state, step, config, pending, reason, the
        times) if its stored version is still ``deployment.version``; in the same transaction
        append ``decision`` to its log, record ``start_step`` and end step ``end_step``
        (index, outcome, when) if it has not ended yet.

        Returns:
            The deployment as stored (its version grown by one).

        Raises:
            NotFound; Conflict when the version moved (another writer changed it first), or
            when ``start_step`` is recorded already (a step starts once).
        """

    @abstractmethod
    def discard(self, deployment_id: int) -> None:
        """Remove a deployment that never changed its endpoint (a start that failed)."""

    @abstractmethod
    def steps(self, deployment_id: int) -> list[StepRecord]:
        """Its steps as they happened, in order."""

    @abstractmethod
    def decisions(self, deployment_id: int, limit: int = 1000) -> list[Decision]:
        """Its decision log, oldest first (the newest ``limit``)."""
