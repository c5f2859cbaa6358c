"""The status reporter: a companion of each server process that tells the store it is alive,
which plan revision it serves and which endpoints it failed to load.

It reports every ``heartbeat_s`` and as soon as the route table or the failures change (it looks
at the deployer's in-memory state a few times a second; that costs nothing). Writes go through
``asyncio.to_thread``, so a slow or unreachable store never blocks a request. A failed write is
logged once (and once more when reports get through again) and retried at the next heartbeat:
the server goes on serving whatever happens to the store. On a clean shutdown its entry is
removed, so a stopped server does not linger as stale.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from modelyard.domain import ServerStatus, ServerStatusSink
from modelyard.serving.deployer import Deployer

log = logging.getLogger("modelyard.serving")

#: How often the reporter looks for a plan change between heartbeats.
_WATCH_S = 0.1
#: The longest a shutdown waits for the store to forget this server.
_STOP_TIMEOUT_S = 5.0


class StatusReporter:
    """Reports one server process's :class:`ServerStatus` to a sink (a :class:`Companion`)."""

    def __init__(
        self,
        deployer: Deployer,
        sink: ServerStatusSink,
        *,
        url: str | None,
        heartbeat_s: float,
        watch_s: float = _WATCH_S,
        host: str | None = None,
    ) -> None:
        self._deployer = deployer
        self._sink = sink
        self._url = url
        self._heartbeat_s = heartbeat_s
        self._watch_s = min(watch_s, heartbeat_s)
        self._host = host or socket.gethostname()
        self._pid = os.getpid()
        self._started_at = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[Any] | None = None
        self._seen = self._state()
        self._failing = False
        self.reports = 0  # successful reports, for the curious (and tests)

    def status(self) -> ServerStatus:
        """This process's status now, from the deployer's current route table and failures
        (read in one go on the event loop, so they belong together)."""
        table = self._deployer.table
        return ServerStatus(
            host=self._host,
            pid=self._pid,
            url=self._url,
            revision=table.revision,
            heartbeat_s=self._heartbeat_s,
            started_at=self._started_at,
            endpoints={name: e.config_number for name, e in table.endpoints.items()},
            failures=dict(self._deployer.failures),
            predictors={
                name: {v.name: v.served.choice.to_dict() for v in e.variants.values()}
                for name, e in table.endpoints.items()
            },
        )

    async def start(self) -> None:
        """Report once, then keep reporting in the background. Never raises for a store error.

        The first report is awaited (for at most one heartbeat interval), so a server is
        normally known to the store by the time it accepts connections.
        """
        self._pid = os.getpid()  # the worker's, whichever process built the app
        first = asyncio.ensure_future(self.report())
        await asyncio.wait({first}, timeout=self._heartbeat_s)
        self._task = asyncio.create_task(self._run(first))

    async def stop(self) -> None:
        """Stop reporting and remove this server's entry (waiting at most a few seconds)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        # A report still being written would otherwise land after the removal.
        if self._writing is not None:
            await asyncio.wait({self._writing}, timeout=_STOP_TIMEOUT_S)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._sink.remove, self._host, self._pid), _STOP_TIMEOUT_S
            )
        except Exception as exc:  # TimeoutError too: the server then shows as stale
            log.warning("could not remove this server's status from the store: %s", exc)

    async def report(self) -> bool:
        """Write the current status to the sink; whether it got through.

        A failure is logged once, when reports start failing, and never raised.
        """
        status = self.status()
        self._seen = self._state()
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._sink.report, status))
        try:
            # Shielded: cancelling the loop must not lose track of a write under way.
            await asyncio.shield(self._writing)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._failing:
                self._failing = True
                log.warning(
                    "could not report this server's status to the store (retrying every %gs): %s",
                    self._heartbeat_s,
                    exc,
                )
            return False
        if self._failing:
            self._failing = False
            log.info("reporting this server's status to the store again")
        self.reports += 1
        return True

    async def _run(self, first: asyncio.Future[bool]) -> None:
        await first
        loop = asyncio.get_running_loop()
        due = loop.time() + self._heartbeat_s
        while True:
            await asyncio.sleep(self._watch_s)
            # A failed report is retried at the next heartbeat, not at the next look: a store
            # that is down is not hammered ten times a second.
            if self._changed() or loop.time() >= due:
                await self.report()
                due = loop.time() + self._heartbeat_s

    def _state(self) -> tuple[Any, Any]:
        # The deployer replaces its table and failures with new objects on every apply.
        return self._deployer.table, self._deployer.failures

    def _changed(self) -> bool:
        table, failures = self._state()
        seen_table, seen_failures = self._seen
        if table is seen_table and failures is seen_failures:
            return False
        # A retry of a failed load applies an identical table: no change worth a report.
        if _fingerprint(table, failures) != _fingerprint(seen_table, seen_failures):
            return True
        self._seen = (table, failures)
        return False


def _fingerprint(table: Any, failures: dict[str, str]) -> tuple[Any, ...]:
    configs = sorted((name, e.config_number) for name, e in table.endpoints.items())
    return table.revision, configs, sorted(failures.items())
