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


class _Keeper:
    """Renews a held lease every third of its time to live until stopped, so work that runs
    longer than the lease is not taken over by another process while it is alive."""

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
        self._stop.set()
        self._thread.join()


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
    taken over once it expires.

    Returns:
        ``Ran(result)`` when ``work`` ran here; None when another process holds or ran the tick.
    """
    if not leases.acquire(name, tick, holder, ttl):
        return None
    keeper = _Keeper(leases, name, tick, holder, ttl)
    try:
        return Ran(work())
    finally:
        keeper.stop()
        if not leases.finish(name, tick, holder):
            log.warning("the lease on %s at %s was taken over before it finished", name, tick)
