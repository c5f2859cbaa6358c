"""The server service: which server processes serve what, judged from their reports.

Every server process reports its plan revision, the config it serves of each endpoint and the
endpoints it failed to load (``serving/reporter.py``). Here those reports become answers:

- a server is **live** while it has reported within ``stale_after`` of its own heartbeat
  intervals (by the store's clock), else **stale**; a server silent for longer than
  ``forget_after_s`` is no longer listed (it was killed without shutting down);
- a server is **current** when its revision is the store's plan revision;
- an endpoint is **unservable** by a live server that reports a failure for it: that server
  answers it with its previous config, or, if it never loaded it, with ModelNotReadyException
  (429 on the SageMaker route, 503 on V2).
"""

from __future__ import annotations

import time

from modelyard.domain import EndpointServer, ServerView, validate_name
from modelyard.errors import ModelLoadFailed, ModelNotReady, NoServerRunning
from modelyard.storage.base import EndpointStore, ServerRegistry

#: A server silent this long is not listed any more (its row stays until one reuses its pid).
FORGET_AFTER_S = 3600.0


class ServerService:
    """Control-plane answers about server processes; the CLI and the Python API call this."""

    def __init__(
        self,
        store: ServerRegistry,
        endpoints: EndpointStore,
        *,
        stale_after: float,
        forget_after_s: float = FORGET_AFTER_S,
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._stale_after = stale_after
        self._forget_after_s = forget_after_s

    def plan_revision(self) -> int:
        """The store's deployment revision: a server at it is current."""
        return self._endpoints.revision()

    def servers(self) -> list[ServerView]:
        """Every server that reported within ``forget_after_s``, judged live/stale and
        current/behind; by host, then pid."""
        revision = self.plan_revision()
        out = []
        for record in self._store.list_servers():
            if record.silent_s > self._forget_after_s:
                continue
            live = record.silent_s <= self._stale_after * record.status.heartbeat_s
            out.append(ServerView(record, live=live, current=record.status.revision == revision))
        return out

    def for_endpoint(self, name: str) -> list[EndpointServer]:
        """Every listed server as seen from endpoint ``name``: the config of it that the
        server serves (None: none) and its failure to load the current one, if any.

        Raises:
            InvalidName.
        """
        validate_name(name, "endpoint name")
        return [_seen_from(name, view) for view in self.servers()]

    def unservable(self) -> dict[str, list[EndpointServer]]:
        """Endpoint name → the live servers that failed to load its current config (only
        endpoints that have one), by name."""
        out: dict[str, list[EndpointServer]] = {}
        for view in self.servers():
            if view.live:
                for name in view.status.failures:
                    out.setdefault(name, []).append(_seen_from(name, view))
        return dict(sorted(out.items()))

    def wait_until_served(
        self, name: str, revision: int, *, timeout: float, poll_s: float = 0.2
    ) -> EndpointServer:
        """Wait until a live server serves endpoint ``name`` as of plan ``revision`` (the
        revision a change produced): its revision is at least that, it serves the endpoint
        and reports no failure for it.

        Returns:
            The first such server seen.

        Raises:
            ModelLoadFailed: a live server at ``revision`` or later failed to load the
                endpoint (raised at once, with that server's reason).
            NoServerRunning: no server was live when ``timeout`` ran out.
            ModelNotReady: live servers did not get there within ``timeout``.
            InvalidName.
        """
        validate_name(name, "endpoint name")
        deadline = time.monotonic() + timeout
        while True:
            seen = [s for s in self.for_endpoint(name) if s.server.live]
            caught_up = [s for s in seen if s.server.status.revision >= revision]
            for server in caught_up:
                if server.config is not None and server.failure is None:
                    return server
            failed = [s for s in caught_up if s.failure is not None]
            if failed:
                first = failed[0]
                where = first.server.status.url or first.server.status.name
                raise ModelLoadFailed(
                    f"endpoint {name!r}: server {where} could not load it: {first.failure}"
                )
            if time.monotonic() >= deadline:
                raise _not_served(name, revision, timeout, seen)
            time.sleep(poll_s)


def _seen_from(name: str, view: ServerView) -> EndpointServer:
    return EndpointServer(
        server=view,
        config=view.status.endpoints.get(name),
        failure=view.status.failures.get(name),
        predictors=dict(view.status.predictors.get(name, {})),
    )


def _not_served(
    name: str, revision: int, timeout: float, live: list[EndpointServer]
) -> ModelNotReady | NoServerRunning:
    if not live:
        return NoServerRunning(
            f"no modelyard server is running against this store (none reported in the "
            f"{timeout:g} s waited), so nothing serves endpoint {name!r}; start one with "
            "'modelyard serve'"
        )
    behind = ", ".join(
        f"{s.server.status.name} at revision {s.server.status.revision}" for s in live
    )
    return ModelNotReady(
        f"endpoint {name!r}: no live server serves plan revision {revision} after "
        f"{timeout:g} s ({behind})"
    )
