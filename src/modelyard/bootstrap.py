"""The composition root: Settings → stores → services → apps. The only wiring code."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelyard import processes
from modelyard.config import Settings, load_settings
from modelyard.domain import JobKind, ModelRef, ModelSpec, ModelVersion, Predictor
from modelyard.errors import StorageNotWritable
from modelyard.services.alarm_endpoints import EndpointCatalog
from modelyard.services.alarms import AlarmService, drift_alarms
from modelyard.services.batch import BatchService
from modelyard.services.capture import CaptureService
from modelyard.services.capture_retention import CaptureRetention
from modelyard.services.deployment_controller import DeploymentController
from modelyard.services.deployment_guards import watching
from modelyard.services.deployments import DeploymentService
from modelyard.services.drift import DriftService
from modelyard.services.endpoints import EndpointService, PredictorCheck
from modelyard.services.feedback import FeedbackService
from modelyard.services.jobs import JobKindRunner, JobService
from modelyard.services.metrics import MetricsService
from modelyard.services.monitors import MonitorService
from modelyard.services.registry import RegistryService
from modelyard.services.reports import ReportService
from modelyard.services.schedules import ScheduleService
from modelyard.services.servers import ServerService
from modelyard.services.shadow_compare import ShadowCompareService
from modelyard.services.training import TrainingService
from modelyard.services.tuning import TuningService
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.base import ArtifactStore, EndpointStore, MetadataStore, ServerRegistry
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.filesystems import check_protocol
from modelyard.storage.sql.alarm_store import SqlAlarmStore
from modelyard.storage.sql.deployment_store import SqlDeploymentStore
from modelyard.storage.sql.endpoint_store import SqlEndpointStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.feedback_store import SqlFeedbackStore
from modelyard.storage.sql.job_store import SqlJobStore
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.metric_store import SqlMetricStore
from modelyard.storage.sql.migrate import SchemaUpgrade, upgrade
from modelyard.storage.sql.monitor_store import SqlMonitorStore
from modelyard.storage.sql.plan_source import SqlPlanSource
from modelyard.storage.sql.schedule_store import SqlScheduleStore
from modelyard.storage.sql.server_store import SqlServerStore
from modelyard.storage.sql.store import SqlMetadataStore
from modelyard.storage.urls import mask_url
from modelyard.training.joblog import LogLimits

# Every engine this process built, so that a forked trial runner can let go of them.
_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass
class Platform:
    """Everything one process needs, built from one Settings object."""

    settings: Settings
    metadata: MetadataStore
    endpoint_store: EndpointStore
    artifacts: ArtifactStore
    registry: RegistryService
    endpoints: EndpointService
    jobs: JobService
    training: TrainingService
    tuning: TuningService
    batch: BatchService
    servers: ServerService
    capture: CaptureService
    capture_retention: CaptureRetention
    metrics: MetricsService
    feedback: FeedbackService
    monitors: MonitorService
    alarms: AlarmService
    drift: DriftService
    schedules: ScheduleService
    deployments: DeploymentService
    deployment_controller: DeploymentController
    shadow_compare: ShadowCompareService
    # Built from the services above (it only reads through them), so not passed in.
    reports: ReportService = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.reports = ReportService(
            endpoint=self.endpoints.get,
            drift=self.drift,
            metrics=self.metrics,
            quality=self.feedback,
            alarms=self.alarms,
            runs=self.monitors,
            refuse_target=self.capture.refuse_inside,
            history=self.endpoints.history,
        )

    @property
    def housekeeping(self) -> list[Callable[[datetime], object]]:
        """The chores a scheduler loop runs once an hour, besides its own: the metric series'
        and the alarms' history's retention, and the captured rows' and the labels' when they
        are set."""
        return [
            self.metrics.prune,
            self.capture_retention.prune_expired,
            self.feedback.prune_expired,
            self.alarms.prune_history,
        ]

    def close(self) -> None:
        """Release database connections."""
        self.metadata.close()


def _ensure_home(settings: Settings) -> None:
    home = settings.home
    try:
        # Never readable by others when we make it: it holds the database (every endpoint's
        # redaction salt) and, by default, the artifacts and the captured rows. Its group
        # gets what the umask gives (a service account's group of operators, umask 007); a
        # folder that exists keeps the mode its owner gave it (a team may share one).
        home.mkdir(mode=0o770, parents=True, exist_ok=True)
    except OSError as exc:
        # mkdir says "File exists" or "Not a directory": name what is in the way instead.
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            blocker = next((p for p in (home, *home.parents) if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                what = "a file, not a folder" if blocker.is_file() else "not a folder"
                if blocker == home:
                    raise StorageNotWritable(f"MODELYARD_HOME {home} is {what}") from None
                raise StorageNotWritable(
                    f"cannot create MODELYARD_HOME {home}: {blocker} is {what}"
                ) from None
        raise StorageNotWritable(f"cannot create MODELYARD_HOME {home}: {exc.strerror}") from None


def _check_serves(
    artifacts: ArtifactStore, scratch: Path, version: ModelVersion, predictor: Predictor
) -> PredictorCheck:
    # The same load-and-warm path a server takes, so a config is only written for models that
    # a server will be able to load; it chooses the predictor as a server will, and leaves the
    # compiled trees and their verdict cached in the artifact store for the servers.
    from modelyard.serving.loader import load_served

    spec = dataclasses.replace(ModelSpec.from_version(version), predictor=predictor)
    served = load_served(artifacts, spec, scratch)
    try:
        return PredictorCheck(served.choice.kind, served.choice.reason)
    finally:
        served.close()


@contextlib.contextmanager
def _disposed_on_error(engine: Any) -> Iterator[None]:
    # A refused schema or an unusable artifact URL must not leave the engine's connection
    # open for the garbage collector (a ResourceWarning on Python 3.13, a leak in a server).
    try:
        yield
    except BaseException:
        engine.dispose()
        raise


def build(settings: Settings | None = None) -> Platform:
    """Open the stores and wire the services. An empty database gets the schema, and SQLite
    is upgraded; an older schema on PostgreSQL is refused (see :func:`upgrade_database`).

    Raises:
        ConfigError, DatabaseUnavailable, StorageNotWritable, SchemaOutdated, SchemaMismatch.
    """
    settings = settings or load_settings()
    _ensure_home(settings)
    engine = make_engine(settings.resolved_db_url, busy_timeout_s=settings.db_busy_timeout_s)
    _ENGINES.add(engine)
    with _disposed_on_error(engine):
        metadata = SqlMetadataStore(engine)
        endpoint_store = SqlEndpointStore(engine)
        artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
        # A capture URL fsspec cannot load is refused now: a server must not start and then
        # lose every captured row. Reaching it is left to the writes (some drivers connect
        # when made; an unreachable store must not stop commands that never capture).
        capture_url = settings.resolved_capture_url
        check_protocol(capture_url, mask_url(capture_url), "the capture folder")
    registry = RegistryService(metadata, artifacts, scratch_dir=settings.home / "tmp")
    endpoints = EndpointService(
        endpoint_store,
        resolve=registry.get_version,
        check_model=functools.partial(_check_serves, artifacts, settings.home / "tmp" / "check"),
    )
    registry.add_guard(endpoints.in_use)
    jobs = _job_service(settings, SqlJobStore(engine), artifacts, registry.get_model)
    training = TrainingService(jobs, registry)
    tuning = TuningService(
        jobs,
        training,
        registry,
        study_url=settings.resolved_db_url,
        start_runner=functools.partial(_fork_runner, settings),
        stale_s=settings.trial_stale_s,
    )
    jobs.register(JobKind.TRAINING, JobKindRunner(training.run))
    batch = BatchService(
        jobs,
        registry,
        artifacts=artifacts,
        scratch=settings.home / "tmp" / "batch",
    )
    jobs.register(JobKind.TUNING, JobKindRunner(tuning.run, beats_itself=True))
    jobs.register(JobKind.BATCH, batch.runner())
    servers = ServerService(
        SqlServerStore(engine), endpoint_store, stale_after=settings.server_stale_after
    )
    capture_folder = CaptureFolder(capture_url)
    capture = CaptureService(capture_folder, endpoints=endpoint_store)
    retention_d = settings.capture_retention_d
    capture_retention = CaptureRetention(
        capture_folder,
        None if retention_d is None else timedelta(days=retention_d),
        # Servers write an hour's last rows up to a roll period after it ends.
        settle=timedelta(seconds=settings.capture_roll_s + 60),
        endpoints=endpoint_store,
    )
    metric_store = _metric_store(engine, settings)
    metrics = MetricsService(metric_store, endpoint_store, version=registry.get_version)
    drift = DriftService(registry, endpoints.get, artifacts, capture)
    monitors, alarms = _monitoring(engine, endpoints, registry, metrics, drift, settings)
    schedules = ScheduleService(
        SqlScheduleStore(engine),
        SqlLeaseStore(engine),
        submit=batch.submit,
        check=batch.check,
        clock=_utcnow,
        get_job=jobs.get,
    )
    deployment_store = SqlDeploymentStore(engine)
    deployments = DeploymentService(
        deployment_store,
        endpoint_store,
        build=endpoints.build,
        alarms=alarms,
        update=endpoints.update_if_changed,
        rollback=endpoints.rollback,
        promote=endpoints.promote,
        clock=_utcnow,
    )
    deployment_controller = DeploymentController(
        deployment_store,
        endpoint_store,
        SqlLeaseStore(engine),
        rows=metric_store.read,
        alarms=alarms,
        servers=servers.for_endpoint,
        clock=_utcnow,
    )
    return Platform(
        settings=settings,
        metadata=metadata,
        endpoint_store=endpoint_store,
        artifacts=artifacts,
        registry=registry,
        endpoints=endpoints,
        jobs=jobs,
        training=training,
        tuning=tuning,
        batch=batch,
        servers=servers,
        capture=capture,
        capture_retention=capture_retention,
        metrics=metrics,
        feedback=_feedback_service(settings, engine, metadata, endpoint_store, capture),
        monitors=monitors,
        alarms=alarms,
        drift=drift,
        schedules=schedules,
        deployments=deployments,
        deployment_controller=deployment_controller,
        shadow_compare=ShadowCompareService(
            endpoints.get,
            endpoints.history,
            capture,
            metric_store.read,
            SqlFeedbackStore(engine),
            lambda ref: metadata.get_version(ModelRef.parse(ref)),
        ),
    )


def _monitoring(
    engine: Any,
    endpoints: EndpointService,
    registry: RegistryService,
    metrics: MetricsService,
    drift: DriftService,
    settings: Settings,
) -> tuple[MonitorService, AlarmService]:
    """The monitor schedules and the alarms, sharing one lease store (their scheduler loop
    runs in ``modelyard serve``'s or ``modelyard monitor run``'s own process)."""
    leases = SqlLeaseStore(engine)
    monitor_store = SqlMonitorStore(engine)
    alarm_store = SqlAlarmStore(engine)
    monitors = MonitorService(
        monitor_store,
        leases,
        drift.drift,  # over the window that ends at each tick
        check_endpoint=endpoints.get,
        clock=_utcnow,
        drift_alarms=functools.partial(drift_alarms, alarm_store),
    )
    alarms = AlarmService(
        alarm_store,
        leases,
        series=metrics.series,
        runs=monitor_store.runs_between,
        endpoints=EndpointCatalog(endpoints.get, registry.get_version),
        clock=_utcnow,
        watched_by=functools.partial(watching, SqlDeploymentStore(engine)),
        history_retention=timedelta(days=settings.alarm_history_retention_d),
        scheduled=monitors.scheduled,
    )
    return monitors, alarms


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _feedback_service(
    settings: Settings,
    engine: Any,
    metadata: MetadataStore,
    endpoint_store: EndpointStore,
    capture: CaptureService,
) -> FeedbackService:
    return FeedbackService(
        SqlFeedbackStore(engine),
        capture,
        history=endpoint_store.history,
        version=lambda ref: metadata.get_version(ModelRef.parse(ref)),
        max_age=timedelta(days=settings.feedback_max_age_d),
        capture_delay=timedelta(seconds=settings.capture_roll_s),
        retention=(
            None
            if settings.feedback_retention_d is None
            else timedelta(days=settings.feedback_retention_d)
        ),
    )


class _FeedbackSink:
    """The serving route's port onto the feedback service (``serving.feedback.FeedbackSink``)."""

    def __init__(self, service: FeedbackService) -> None:
        self._service = service

    def record(self, endpoint: str, items: Sequence[Any]) -> dict[str, Any]:
        return self._service.record(endpoint, items).to_dict()


def _metric_store(engine: Any, settings: Settings) -> SqlMetricStore:
    return SqlMetricStore(
        engine,
        minute_retention=timedelta(hours=settings.metrics_minute_retention_h),
        hour_retention=timedelta(days=settings.metrics_hour_retention_d),
    )


def upgrade_database(settings: Settings | None = None, **overrides: Any) -> SchemaUpgrade:
    """Apply the packaged schema migrations to the configured metadata database
    (``modelyard db upgrade``): the one way an older schema on a shared database is upgraded.
    Safe to run while other processes open the database (they wait for it to finish).

    Args:
        settings: The settings to use (default: read from the environment).
        overrides: Settings fields when ``settings`` is not given, e.g. ``db_url="…"``.

    Returns:
        The revision before (None for an empty database) and after.

    Raises:
        ConfigError, DatabaseUnavailable, StorageNotWritable, SchemaMismatch (a newer
        modelyard's schema).
    """
    settings = settings or load_settings(**overrides)
    _ensure_home(settings)
    engine = make_engine(settings.resolved_db_url, busy_timeout_s=settings.db_busy_timeout_s)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


def _job_service(
    settings: Settings,
    store: SqlJobStore,
    artifacts: ArtifactStore,
    check_model: Callable[[str], object],
) -> JobService:
    """Jobs run in worker processes on this machine, which see this process's settings (its
    ``MODELYARD_*`` variables replaced by them) and log under ``$MODELYARD_HOME/jobs``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(settings.to_environ())
    return JobService(
        store,
        artifacts,
        logs_dir=settings.home / "jobs",
        processes=processes.LocalProcesses(settings.home / "jobs", env),
        host=socket.gethostname(),
        log_limits=LogLimits(settings.job_log_head_bytes, settings.job_log_tail_bytes),
        stale_s=settings.trial_stale_s,
        check_model=check_model,
    )


def _fork_runner(settings: Settings, tuning_job: str) -> int:
    """Fork a trial runner of ``tuning_job`` from its coordinator; the child's pid. The
    coordinator has imported what trials need (``modelyard.tuning.preload``), so a runner
    starts in milliseconds; it opens its own database connections."""
    return processes.fork_helper(
        _close_connections,
        lambda stop: _run_trials(settings, tuning_job, stop),
    )


def _run_trials(settings: Settings, tuning_job: str, stop: threading.Event) -> None:
    build(settings).tuning.run_trials(tuning_job, stop)


def _close_connections() -> None:
    """No database connection may cross a fork (SQLite forbids it; a PostgreSQL socket would be
    shared): close them all; this process reconnects on next use."""
    from modelyard.tuning.study import close_connections

    for engine in list(_ENGINES):
        engine.dispose()
    close_connections()


def open_registry(**overrides: Any) -> RegistryService:
    """The model registry for the configured (or overridden) home and database.

    Args:
        overrides: Settings fields, e.g. ``home=".modelyard"``, ``db_url="postgresql+psycopg://…"``.
    """
    return build(load_settings(**overrides)).registry


def open_platform(**overrides: Any) -> Platform:
    """Registry and endpoint services for the configured (or overridden) settings."""
    return build(load_settings(**overrides))


def serving_app(settings: Settings | None = None) -> Any:
    """The ASGI app of one serving process (uvicorn calls this in every worker).

    Raises:
        ConfigError, DatabaseUnavailable, SchemaMismatch: before the server starts listening.
    """
    from modelyard.serving.app import ServerOptions, build_app, predict_executor
    from modelyard.serving.capture_writer import CaptureWriter
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.loader import load_served
    from modelyard.serving.monitoring import MonitoringWrapper
    from modelyard.serving.shadow import ShadowWrapper
    from modelyard.serving.v2.rest import V2Rest

    settings = settings or load_settings()
    _ensure_home(settings)
    engine = make_engine(settings.resolved_db_url, busy_timeout_s=settings.db_busy_timeout_s)
    with _disposed_on_error(engine):
        metadata = SqlMetadataStore(engine)  # refuses an older (but SQLite's) or newer schema
        artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    scratch = settings.home / "tmp" / "serving"
    deployer = Deployer(
        SqlPlanSource(engine),
        load=functools.partial(load_served, artifacts, scratch=scratch),
        predict_executor=predict_executor(settings.predict_timeout_s),
        poll_interval_s=settings.plan_poll_s,
    )
    options = ServerOptions(
        max_payload_bytes=settings.max_payload_bytes,
        cors_origins=settings.cors_origin_list,
        body_timeout_s=settings.body_timeout_s,
        predict_timeout_s=settings.predict_timeout_s,
    )
    # First in, so stopped last: the engine's connections close after everyone used them.
    companions: list[Any] = [lambda core: _Disposer(engine)]
    if settings.grpc_port is not None:  # grpc is imported only when it is served
        from modelyard.serving.v2.grpc_server import GrpcServer

        grpc = functools.partial(
            GrpcServer, options=options, host=settings.grpc_host, port=settings.grpc_port
        )
        companions.append(grpc)
    # One capture writer (and thread) per worker process: it writes what is queued at stop.
    capture = CaptureWriter(
        CaptureFolder(settings.resolved_capture_url),
        max_rows=settings.capture_queue_rows,
        roll_s=settings.capture_roll_s,
    )
    metrics = _serving_metrics(settings, engine, capture.counters)
    if metrics is not None:  # stopped before the engine is disposed: it flushes to the store
        companions.append(metrics.companion)
    # Stopped before the metrics: their last drain counts the rows it writes at stop.
    companions.append(lambda core: capture)
    # Each request's copies to its shadows, recorded as requests of their own by the layers
    # below; stopped first of those, so the queued copies still reach capture and metrics.
    monitoring = MonitoringWrapper(capture=capture, metrics=metrics)
    shadows = ShadowWrapper(
        observer=metrics,
        max_queued=settings.shadow_queue_copies,
        max_queued_rows=settings.shadow_queue_rows,
        records=monitoring.records,
    )
    if metrics is not None:
        metrics.count_shadows(shadows.counters)
    companions.append(shadows.companion)
    # Last: it starts once everything else serves, and on shutdown leaves the store first.
    companions.append(functools.partial(_status_reporter, SqlServerStore(engine), settings))
    # One layer records each call for both capture and the metrics (one pass, not two); the
    # shadow fan-out outside it, so that it records the shadows' copies too.
    wrappers = (shadows, monitoring)
    return build_app(
        deployer,
        options,
        wrappers,
        v2=V2Rest,
        companions=companions,
        observer=metrics,
        metrics=metrics,
        feedback=_FeedbackSink(
            _feedback_service(
                settings,
                engine,
                metadata,
                SqlEndpointStore(engine),
                CaptureService(CaptureFolder(settings.resolved_capture_url)),
            )
        ),
    )


def _serving_metrics(settings: Settings, engine: Any, capture: Any = None) -> Any:
    """The worker's metrics (None when turned off), in the server run's metrics folder
    (``modelyard serve`` makes a fresh one and names it in ``MODELYARD_METRICS_DIR``; a server
    app built otherwise gets a folder of its own, so its workers' sums are its own), counting
    what the worker's capture writer does (``capture``: its ``counters``)."""
    if not settings.metrics:
        return None
    import tempfile

    from modelyard.serving.metrics import Metrics

    directory = settings.metrics_dir
    own = directory is None
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="modelyard-metrics-"))
    return Metrics(
        directory,
        sink=_metric_store(engine, settings),
        flush_s=settings.metrics_flush_s,
        remove_directory=own,
        capture=capture,
    )


class _Disposer:
    """Closes the serving process's database connections at shutdown (a companion)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._engine.dispose()


def _status_reporter(sink: ServerRegistry, settings: Settings, core: Any) -> Any:
    """The companion that reports this server process's status to the store."""
    from modelyard.serving.reporter import StatusReporter

    return StatusReporter(
        core.deployer, sink, url=settings.server_url, heartbeat_s=settings.server_heartbeat_s
    )
