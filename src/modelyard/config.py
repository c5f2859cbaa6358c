"""One typed Settings object, read once by ``bootstrap`` and passed down.

Settings come from keyword arguments and ``MODELYARD_*`` environment variables. An unknown
``MODELYARD_`` variable is refused: a typo (``MODELYARD_DB_URI``) must not be silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from modelyard.domain.capture import CAPTURE_FOLDER
from modelyard.errors import ConfigError

ENV_PREFIX = "MODELYARD_"


class Settings(BaseSettings):
    """Where modelyard keeps its state.

    Attributes:
        home: Folder for the embedded database, local artifacts and caches (``./.modelyard``).
        db_url: SQLAlchemy URL of the metadata database; default: SQLite file under ``home``.
            For PostgreSQL: ``postgresql+psycopg://user:pass@host:5432/db``.
        artifact_url: fsspec URL of the artifact store; default: ``home/artifacts``.
        db_busy_timeout_s: How long SQLite waits for a lock before giving up.
        max_payload_bytes: Largest invocation body the server reads (413 above it).
        body_timeout_s: How long the server waits for a request body to arrive in full (408
            after it: a client that stalls mid-body does not hold a connection for ever).
        predict_timeout_s: How long an invocation waits for its model's prediction (SageMaker's
            60 s by default); after it the caller gets a ``ModelError`` and a call still stuck
            in the model no longer holds up the other models' predictions.
        cors_origins: Comma-separated origins browsers may call the server from (``*``: any),
            each as a browser sends it (:func:`cors_origin_problem`).
        grpc_port: The TCP port of the Open Inference Protocol V2 gRPC service, served by the
            same processes as HTTP; None: no gRPC.
        grpc_host: The interface the gRPC service binds (``modelyard serve`` sets it to its
            ``--host``).
        plan_poll_s: How often a server checks the store for endpoint changes.
        trial_stale_s: A job (a tuning trial, a batch job) running on another machine whose
            worker has not reported for this long is marked Failed (its worker or machine
            died).
        job_log_head_bytes: How much of the start of a job's log is kept.
        job_log_tail_bytes: How much of the end of a job's log is kept; what a job prints
            between its head and its tail is cut, and a line in the log says how much.
        serving_url: Where the Python API's ``Predictor`` sends invocations (a
            ``modelyard serve``, or a load balancer in front of several).
        server_url: The URL this server process answers at, recorded with its status
            (``modelyard serve`` sets it for its workers).
        server_heartbeat_s: How often each server process reports its status to the store.
        server_stale_after: A server silent for this many of its heartbeat intervals is
            stale (stopped, hung, or cut off from the store); until then it is live.
        capture_url: Where servers write captured requests (a folder or any fsspec URL);
            default: the ``capture`` folder of the artifact store.
        capture_queue_rows: The most captured rows a server process holds waiting to be
            written; captures past it are dropped (and counted).
        capture_roll_s: How often a server process starts a new captured-rows file per
            endpoint (the delay before captured rows can be read).
        capture_retention_d: Days captured rows are kept: the scheduler loop deletes older
            partition hours once an hour (unset: kept until ``modelyard capture prune``).
        shadow_queue_copies: The most copies of requests a server process holds waiting for
            each shadow variant; copies past it are dropped (and counted).
        shadow_queue_rows: The most rows those waiting copies hold in all, for each shadow
            variant (each copy holds its request's decoded rows, so this bounds their
            memory: about rows x features x 8 bytes, 40 MB at the default and 100 features);
            a copy past it is dropped (and counted), and so is a copy of a request with more
            rows than this.
        metrics: Whether servers keep metrics (``GET /metrics``, the per-minute series).
        metrics_dir: Where a server's workers keep their metric files; ``modelyard serve``
            makes a fresh folder for each run in it (default: the system's temp folder).
        metrics_flush_s: How often each server process writes its per-minute series.
        metrics_minute_retention_h: Hours the per-minute series are kept; older minutes are
            merged into hourly rows.
        metrics_hour_retention_d: Days the hourly series are kept.
        feedback_max_age_d: Labels are taken for predictions made at most this many days
            ago; older ones are reported expired.
        feedback_retention_d: Days the labels (with the predictions they label: the quality
            history) are kept: the scheduler loop deletes older ones once an hour (unset:
            kept forever). At least a day longer than ``feedback_max_age_d``.
        alarm_history_retention_d: Days the alarms' state changes (``alarms history``) are
            kept: the scheduler loop deletes older ones once an hour, each alarm's latest
            change kept whatever its age.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: :func:`load_settings` reads the environment, in one place
        and as the unknown-variable check reads it (``MODELYARD_*`` as written). pydantic's
        own reading took ``modelyard_db_url`` too (case-insensitively), which that check and
        the scripts' environment filter did not see."""
        return (init_settings,)

    home: Path = Field(default=Path(".modelyard"))
    db_url: str | None = None
    artifact_url: str | None = None
    db_busy_timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    max_payload_bytes: int = Field(default=6 * 1024 * 1024, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    predict_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    cors_origins: str = ""
    grpc_port: int | None = Field(default=None, ge=1, le=65535)
    grpc_host: str = "127.0.0.1"
    plan_poll_s: float = Field(default=0.5, ge=0.01, le=60)
    trial_stale_s: float = Field(default=60.0, gt=0)
    job_log_head_bytes: int = Field(default=1024 * 1024, ge=0)
    # A tiny tail would make a chatty job rewrite its log on almost every line.
    job_log_tail_bytes: int = Field(default=4 * 1024 * 1024, ge=4096)
    serving_url: str = "http://127.0.0.1:8080"
    server_url: str | None = None
    server_heartbeat_s: float = Field(default=2.0, ge=0.01, le=300)
    server_stale_after: float = Field(default=3.0, ge=1)
    capture_url: str | None = None
    capture_queue_rows: int = Field(default=50_000, ge=1)
    capture_roll_s: float = Field(default=60.0, ge=0.01, le=86_400)
    capture_retention_d: float | None = Field(default=None, gt=0, le=36_500)
    shadow_queue_copies: int = Field(default=1000, ge=1)
    shadow_queue_rows: int = Field(default=50_000, ge=1)
    metrics: bool = True
    metrics_dir: Path | None = None
    metrics_flush_s: float = Field(default=10.0, ge=0.01, le=60)
    metrics_minute_retention_h: float = Field(default=48.0, gt=0, le=876_000)
    metrics_hour_retention_d: float = Field(default=30.0, gt=0, le=36_500)
    feedback_max_age_d: float = Field(default=30.0, gt=0, le=36_500)
    feedback_retention_d: float | None = Field(default=None, gt=0, le=36_500)
    alarm_history_retention_d: float = Field(default=90.0, gt=0, le=36_500)

    @model_validator(mode="after")
    def _labels_outlive_their_window(self) -> Settings:
        kept, window = self.feedback_retention_d, self.feedback_max_age_d
        if kept is not None and kept < window + 1:
            raise ValueError(
                f"feedback_retention_d ({kept:g} days) must be at least a day longer than "
                f"feedback_max_age_d ({window:g} days): labels accepted for the oldest "
                "predictions would be deleted within the hour"
            )
        return self

    @field_validator("cors_origins")
    @classmethod
    def _origins_a_browser_sends(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            problem = cors_origin_problem(origin) if origin else None
            if problem is not None:
                raise ValueError(f"{origin!r} {problem}")
        return value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    def to_environ(self) -> dict[str, str]:
        """These settings as ``MODELYARD_*`` variables, for a child process (a job worker)."""
        out = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                out[ENV_PREFIX + name.upper()] = str(value)
        return out

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """``cors_origins`` split into a tuple."""
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @property
    def resolved_db_url(self) -> str:
        """The metadata database URL, defaulting to ``sqlite:///<home>/modelyard.db``."""
        return self.db_url or f"sqlite:///{self.home / 'modelyard.db'}"

    @property
    def resolved_artifact_url(self) -> str:
        """The artifact store URL, defaulting to ``<home>/artifacts``."""
        return self.artifact_url or str(self.home / "artifacts")

    @property
    def resolved_capture_url(self) -> str:
        """Where captured requests go, defaulting to ``<artifact store>/capture``."""
        if self.capture_url:
            return self.capture_url
        root, query = self.resolved_artifact_url.partition("?")[::2]
        return f"{root.rstrip('/')}/{CAPTURE_FOLDER}" + (f"?{query}" if query else "")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def cors_origin_problem(origin: str) -> str | None:
    """Why a browser never sends ``origin`` as its ``Origin`` header (None: it may).

    A browser writes its origin as ``scheme://host[:port]``: lower case, no path, no default
    port (RFC 6454); ``*`` (any origin) and ``null`` (a page from a file, a sandbox) are taken
    as written. An allow-list entry written any other way matches nothing.
    """
    if origin in ("*", "null"):
        return None
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.scheme or not parts.hostname or parts.username is not None:
        return "is not an origin: write it as a browser sends it, scheme://host[:port]"
    host = parts.hostname
    try:  # a browser sends a name in Unicode in its ASCII form (xn--…)
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"does not name a host a browser can reach ({host!r})"
    host = f"[{host}]" if ":" in host else host
    scheme = parts.scheme.lower()
    shown = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    meant = f"{scheme}://{host}{shown}"
    if meant == origin:
        return None
    return (
        "matches no browser's Origin (scheme://host[:port], lower case, no path, no default "
        f"port): use {meant!r}"
    )


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from ``environ`` (default: the process environment) and overrides.

    Raises:
        ConfigError: for an unknown ``MODELYARD_`` variable or an invalid value.
    """
    env = os.environ if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    # Variables meant for other tools (test switches) may share the prefix; only ours are checked.
    unknown = sorted(
        k
        for k in env
        if k.startswith(ENV_PREFIX) and k not in known and not k.startswith(ENV_PREFIX + "TEST_")
    )
    if unknown:
        raise ConfigError(
            f"unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env and env[key] != "":
            values[name] = env[key]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        # Values are passed explicitly so the environment is read in exactly one place.
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


def _problem(error: Any) -> str:
    """One pydantic error as ``field: message`` (a check of several fields has no field)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {message}" if where else message
