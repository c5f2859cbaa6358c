"""The lease contract: how loops that must run once per tick (monitor schedules, alarm
evaluation, later the deployment controller) agree across processes that share one store.

One lease row per ``(name, tick)``: "tick T of loop L". A process that takes it runs the tick;
every other process that asks for the same tick is refused. The holder finishes the lease when
the work is done (it is then never taken again), or renews it while the work goes on. A holder
that dies leaves its lease to expire, after which one other process may take it over.

Time is the store's own (the database server's clock on PostgreSQL), so processes on machines
whose clocks disagree judge expiry alike. Every implementation passes
``tests/storage/test_leases.py`` (two contenders, threads and processes, on each backend).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease row as stored.

    Attributes:
        name: The loop (``monitor:churn-api``, ``alarm:p99-high``).
        tick: The tick it is for (UTC).
        holder: Who holds (or held) it (``host:pid``).
        taken_at: When the holder took it, by the store's clock.
        expires_at: When it lapses unless renewed or finished, by the store's clock.
        done_at: When the holder finished it, or None while it is held.
        attempts: How many holders took it (more than 1: an earlier holder died).
    """

    name: str
    tick: datetime
    holder: str
    taken_at: datetime
    expires_at: datetime
    done_at: datetime | None
    attempts: int


class LeaseStore(ABC):
    """Leases on ``(name, tick)`` pairs; see the module docstring for the contract.

    Every method is one transaction; database errors surface as
    :class:`~modelyard.errors.StorageUnavailable` subclasses.
    """

    @abstractmethod
    def acquire(self, name: str, tick: datetime, holder: str, ttl: timedelta) -> bool:
        """Take the lease on ``(name, tick)`` for ``holder`` until the store's now + ``ttl``.

        Of any number of concurrent callers (threads, processes, machines) for the same pair,
        exactly one gets True. Ticks only move forward: a tick older than the newest tick ever
        leased under ``name`` is refused, so a process whose clock lags cannot run a tick again.

        Returns:
            True when taken: no row existed for the pair, or its row expired unfinished (its
            holder died; ``attempts`` grows). False when someone else holds or has finished
            it, or a later tick of ``name`` was leased.
        """

    @abstractmethod
    def renew(self, name: str, tick: datetime, holder: str, ttl: timedelta) -> bool:
        """Extend ``holder``'s unfinished lease to the store's now + ``ttl``.

        Returns:
            False when ``holder`` no longer holds it (it expired and was taken over).
        """

    @abstractmethod
    def finish(self, name: str, tick: datetime, holder: str) -> bool:
        """Mark the tick done: nobody takes it again.

        Returns:
            False when ``holder`` no longer holds it (its work may be done twice).
        """

    @abstractmethod
    def get(self, name: str, tick: datetime) -> Lease | None:
        """The lease row of ``(name, tick)``, or None."""

    @abstractmethod
    def prune(self, before: datetime) -> int:
        """Delete leases of ticks before ``before`` that are finished or expired, always keeping
        the newest tick of each name (which keeps ticks moving forward).

        Returns:
            How many rows were deleted.
        """
