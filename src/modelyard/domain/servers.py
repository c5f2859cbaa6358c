"""Server processes as the control plane sees them: what each one reports (its plan revision,
the config it serves of each endpoint, the endpoints it failed to load) and how it is judged
(live or stale, current or behind).

A server process (one uvicorn worker of ``modelyard serve``) reports a :class:`ServerStatus`
every few seconds and on every plan change, through a :class:`ServerStatusSink`; the store
returns :class:`ServerRecord` s stamped with its own clock; the server service turns those into
:class:`ServerView` s and, per endpoint, :class:`EndpointServer` s. Their ``to_dict`` is the wire
shape the CLI's ``--json`` (and any later API) prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What one server process says about itself.

    Attributes:
        host: The machine's host name.
        pid: The process id (with ``host``, the server's identity).
        url: Where it answers HTTP (``http://10.0.0.5:8080``), if known.
        revision: The deployment plan revision its route table was built from.
        heartbeat_s: How often it reports; the control plane judges silence against it.
        started_at: When the process started serving (UTC).
        endpoints: Endpoint name → the config number it serves of it.
        failures: Endpoint name → why it could not load that endpoint's current config (it
            keeps serving the config it had, if any).
        predictors: Endpoint name → variant name → the predictor serving it, as
            ``{"kind": "compiled" | "native", "reason": ..., "row_us": ..., ...}``.
    """

    host: str
    pid: int
    url: str | None
    revision: int
    heartbeat_s: float
    started_at: datetime
    endpoints: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    predictors: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``host:pid``: how people tell servers apart."""
        return f"{self.host}:{self.pid}"


class ServerStatusSink(Protocol):
    """Where a server process reports (the data plane's only write to the control plane)."""

    def report(self, status: ServerStatus) -> None:
        """Record ``status`` as the latest word of server ``(host, pid)``, heartbeat now."""
        ...

    def remove(self, host: str, pid: int) -> None:
        """Forget server ``(host, pid)``: it is shutting down cleanly."""
        ...


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """A server's last report as stored.

    Attributes:
        status: What it reported.
        heartbeat_at: When its last report arrived, by the store's clock.
        silent_s: Seconds since then, by the same clock (so machines whose clocks disagree
            are judged alike).
    """

    status: ServerStatus
    heartbeat_at: datetime
    silent_s: float


@dataclass(frozen=True, slots=True)
class ServerView:
    """A server judged by the control plane.

    Attributes:
        record: Its last report.
        live: It reported within its allowed silence (a few heartbeat intervals).
        current: Its route table is built from the store's current plan revision.
    """

    record: ServerRecord
    live: bool
    current: bool

    @property
    def status(self) -> ServerStatus:
        return self.record.status

    @property
    def state(self) -> str:
        """``live`` or ``stale``."""
        return "live" if self.live else "stale"

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of a server."""
        s = self.status
        return {
            "server": s.name,
            "host": s.host,
            "pid": s.pid,
            "url": s.url,
            "state": self.state,
            "revision": s.revision,
            "current": self.current,
            "heartbeat_at": self.record.heartbeat_at.isoformat(),
            "silent_s": round(self.record.silent_s, 3),
            "heartbeat_s": s.heartbeat_s,
            "started_at": s.started_at.isoformat(),
            "endpoints": dict(s.endpoints),
            "failures": dict(s.failures),
            "predictors": dict(s.predictors),
        }


@dataclass(frozen=True, slots=True)
class EndpointServer:
    """One server as seen from one endpoint.

    Attributes:
        server: The server, judged.
        config: The endpoint's config number it serves (None: it does not serve it).
        failure: Why it could not load the endpoint's current config, if it could not.
        predictors: Variant name → the predictor serving it there (see ServerStatus).
    """

    server: ServerView
    config: int | None
    failure: str | None
    predictors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def serves_current(self) -> bool:
        """Live, on the current plan, serving the endpoint, no failure: it answers with the
        endpoint's current config."""
        return (
            self.server.live
            and self.server.current
            and self.config is not None
            and self.failure is None
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of a server of an endpoint."""
        s = self.server.status
        return {
            "server": s.name,
            "url": s.url,
            "state": self.server.state,
            "revision": s.revision,
            "current": self.server.current,
            "config": self.config,
            "failure": self.failure,
            "predictors": dict(self.predictors),
            "heartbeat_at": self.server.record.heartbeat_at.isoformat(),
            "silent_s": round(self.server.record.silent_s, 3),
        }
