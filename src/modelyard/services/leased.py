"""Running one tick of a loop under its lease: take it, keep it while the work goes on, finish it.

The lease (``storage/leases.py``) makes the tick run in one process; this module is the one
way services use it, so every loop (monitor schedules, alarm evaluation) holds leases alike.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from modelyard.errors import ModelyardError
from modelyard.storage.leases import LeaseStore

T = TypeVar("T")
log = logging.getLogger("modelyard.leases")


def default_holder() -> str:
    """``host:pid``: who holds a lease, as people read it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Ran(Generic[T]):
    """The work ran here, and returned ``result``."""

    result: T


def finished_elsewhere(leases: LeaseStore, name: str, tick: datetime) -> bool:
    """Whether a tick :func:`run_leased` did not run here is settled: its lease is finished
    (or gone), so nobody runs it again. False while another process holds it: a loop asks
    for that tick again on its next pass, and takes it over if that holder died."""
    found = leases.get(name, tick)
    return found is None or found.done_at is not None


class _Keeper:
    """Renews a held lease every third of its time to live until stopped, so work that runs
    longer than the lease is not taken over by another process while it is alive."""

    #: Longest :meth:`stop` waits for a renewal under way (a store that hangs must not hold
    #: up the loop; the thread is a daemon and ends once the renewal returns).
    STOP_WAIT_S = 5.0

    def __init__(
        self, leases: LeaseStore, name: str, tick: datetime, holder: str, ttl: timedelta
    ) -> None:
        self._args = (name, tick, holder, ttl)
        self._leases = leases
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self._args[3].total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self._leases.renew(*self._args):
                    log.warning("lost the lease on %s at %s", self._args[0], self._args[1])
                    return
            except ModelyardError as exc:  # the store is down: try again next time
                log.warning("cannot renew the lease on %s: %s", self._args[0], exc)

    def stop(self) -> None:
        """Stop renewing; wait for a renewal under way at most a renewal interval (and at most
        :data:`STOP_WAIT_S`)."""
        self._stop.set()
        self._thread.join(min(self._args[3].total_seconds() / 3, self.STOP_WAIT_S))
        if self._thread.is_alive():
            log.warning("the lease keeper of %s is stuck in a renewal; left behind", self._args[0])


def run_leased(
    leases: LeaseStore,
    name: str,
    tick: datetime,
    work: Callable[[], T],
    *,
    holder: str,
    ttl: timedelta,
) -> Ran[T] | None:
    """Run ``work`` if this process takes the lease on ``(name, tick)``.

    The lease is finished however ``work`` ends (an exception included, which propagates): a
    tick runs at most once while its holder lives; only a holder that dies leaves it to be
    taken over once it expires. A failure to finish it is logged and never replaces the
    work's own outcome (its result, or its exception); the lease then expires and another
    process may run the tick again.

    Returns:
        ``Ran(result)`` when ``work`` ran here; None when another process holds or ran the tick
        (:func:`finished_elsewhere` tells which).
    """
    if not leases.acquire(name, tick, holder, ttl):
        return None
    keeper = _Keeper(leases, name, tick, holder, ttl)
    try:
        result = work()
    finally:
        keeper.stop()
        _finish(leases, name, tick, holder)
    return Ran(result)


def _finish(leases: LeaseStore, name: str, tick: datetime, holder: str) -> None:
    try:
        finished = leases.finish(name, tick, holder)
    except Exception as exc:  # the work's outcome, not this, is what the caller must see
        detail = exc.message if isinstance(exc, ModelyardError) else repr(exc)
        log.warning("cannot finish the lease on %s at %s (it will expire): %s", name, tick, detail)
        return
    if not finished:
        log.warning("the lease on %s at %s was taken over before it finished", name, tick)
