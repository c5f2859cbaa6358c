"""Table definitions. The schema itself is created only by the Alembic migrations shipped in
``migrations/``; this module must describe the same tables (a test compares them)."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

#: Alembic's record of the schema revision. Not Alembic's default ``alembic_version``: Optuna's
#: study storage lives in the same database and keeps its own revision under that name.
VERSION_TABLE = "modelyard_schema_version"
LEGACY_VERSION_TABLE = "alembic_version"

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    # The last number handed out; bumped with UPDATE ... RETURNING so concurrent registrations
    # serialise on this row and numbers are never reused after a delete.
    sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="RESTRICT"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("flavor", sa.String(64), nullable=False),
    sa.Column("model_format", sa.String(32), nullable=False),
    sa.Column("artifact_digest", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.JSON, nullable=True),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("source_kind", sa.String(32), nullable=False),
    sa.Column("source_uri", sa.Text, nullable=True),
    sa.Column("trust", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model_id", "version"),
)

model_tags = sa.Table(
    "model_tags",
    metadata,
    sa.Column(
        "model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

version_tags = sa.Table(
    "version_tags",
    metadata,
    sa.Column(
        "version_id",
        sa.Integer,
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column(
        "model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("alias", sa.String(128), primary_key=True),
    # RESTRICT: a version an alias points at cannot disappear under it.
    sa.Column(
        "version_id",
        sa.Integer,
        sa.ForeignKey("model_versions.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    # Last config number handed out for this endpoint (same scheme as models.last_version).
    sa.Column("last_config", sa.Integer, nullable=False, server_default="0"),
    sa.Column("current_config", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The secret that hashes redacted captured fields: made once with the endpoint (a Python
    # default, so every insert gets its own), never changed; migration 0008 gave older rows one.
    sa.Column("capture_salt", sa.String(64), nullable=True, default=lambda: secrets.token_hex(16)),
)

endpoint_configs = sa.Table(
    "endpoint_configs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "endpoint_id", sa.Integer, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("number", sa.Integer, nullable=False),
    # The config this one replaced: rollback returns to it (and a second rollback to its parent).
    sa.Column("parent", sa.Integer, nullable=True),
    sa.Column("change", sa.String(16), nullable=False),
    sa.Column("variants", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("endpoint_id", "number"),
)

# Variants of current configs, one row each, so "is version N in use?" is one indexed query.
serving_versions = sa.Table(
    "serving_versions",
    metadata,
    sa.Column(
        "endpoint_id",
        sa.Integer,
        sa.ForeignKey("endpoints.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("variant", sa.String(128), primary_key=True),
    sa.Column(
        "version_id",
        sa.Integer,
        sa.ForeignKey("model_versions.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
)

# One row: bumped by every endpoint change, polled by serving processes.
deployment_state = sa.Table(
    "deployment_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(160), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("hyperparameters", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("model_version", sa.Integer, nullable=True),
    sa.Column("log_digest", sa.String(64), nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    # A tuning job's trials name it here.
    sa.Column("parent", sa.String(160), nullable=True, index=True),
    # Last sign of life from the process running it (tuning trials on other machines).
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    # The model package a trial staged (registered only if it is the best): StagedModel.to_dict().
    sa.Column("artifact", sa.JSON, nullable=True),
    # What the job holds for its life (a batch job: a digest of its output location).
    sa.Column("claim", sa.String(64), nullable=True),
)

#: The statuses of a job that holds its claim (any other ends it: nothing to release).
CLAIM_HOLDING = ("Pending", "InProgress", "Stopping")

# One active job at most per claim: the database refuses the second at once, whatever the
# order two submissions ran their checks in.
_holding = sa.text("claim IS NOT NULL AND status IN ('Pending', 'InProgress', 'Stopping')")
sa.Index(
    "ix_jobs_active_claim",
    jobs.c.claim,
    unique=True,
    sqlite_where=_holding,
    postgresql_where=_holding,
)

# One row per server process (a uvicorn worker of `modelyard serve`): its last report.
servers = sa.Table(
    "servers",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("pid", sa.Integer, primary_key=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    # Endpoint name → config number served; endpoint name → why its current config failed.
    sa.Column("endpoints", sa.JSON, nullable=False),
    sa.Column("failures", sa.JSON, nullable=False),
    # Endpoint name → variant name → the predictor serving it ({"kind", "reason", ...}).
    sa.Column("predictors", sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("heartbeat_s", sa.Float, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    # By the store's clock (see SqlServerStore), never the reporting machine's.
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)

# -- metric series (migration 0009) --------------------------------------------------------------

# What one server worker served of one endpoint variant in one minute (resolution_s 60), its
# MetricStats as JSON; minutes past retention are merged into one hourly row (3600, worker "").
metric_series = sa.Table(
    "metric_series",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("resolution_s", sa.Integer, primary_key=True),
    sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("variant", sa.String(128), primary_key=True),
    sa.Column("worker", sa.String(255), primary_key=True),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Index("ix_metric_series_resolution_s_period_start", "resolution_s", "period_start"),
)

# -- monitoring control loops (migration 0010) ---------------------------------------------------

# One row per (loop, tick): "tick T of loop L is run by one process" (see storage/leases.py).
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("tick", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    # By the store's clock, never the holder's machine's.
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
)

monitor_schedules = sa.Table(
    "monitor_schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    # Exactly one of every_s and cron is set.
    sa.Column("every_s", sa.Integer, nullable=True),
    sa.Column("cron", sa.String(128), nullable=True),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # DriftConfig.to_dict() of the thresholds its runs use; NULL: the defaults.
    sa.Column("drift_config", sa.JSON(none_as_null=True), nullable=True),
)

# Kept when their schedule is removed: the history of what was found stays readable.
monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schedule", sa.String(128), nullable=False),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("tick", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    # DriftReport.to_dict() per variant, and variant -> score name -> value (what alarms read).
    sa.Column("reports", sa.JSON, nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.UniqueConstraint("schedule", "tick"),
    sa.Index("ix_monitor_runs_endpoint_tick", "endpoint", "tick"),
)

alarm_rules = sa.Table(
    "alarm_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("endpoint", sa.String(128), nullable=False, index=True),
    sa.Column("variant", sa.String(128), nullable=True),
    sa.Column("metric", sa.String(256), nullable=False),
    sa.Column("comparison", sa.String(2), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("datapoints", sa.Integer, nullable=False),
    sa.Column("windows", sa.Integer, nullable=False),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("statistic", sa.String(8), nullable=False),
    # How a window without data counts (``MissingData``): insufficient, breaching, … .
    sa.Column("missing", sa.String(16), nullable=False, server_default="insufficient"),
    sa.Column("sinks", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
    # The end of the last evaluated window: evaluations only move forward.
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
)

alarm_history = sa.Table(
    "alarm_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alarm", sa.String(128), nullable=False, index=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("old_state", sa.String(24), nullable=False),
    sa.Column("new_state", sa.String(24), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("windows", sa.JSON, nullable=False),
    # How each sink took the change: [{"sink", "ok", "error"}].
    sa.Column("notifications", sa.JSON, nullable=False),
    # "state_change", or a message about the alarm ("deployment_rollback"; migration 0016).
    sa.Column("kind", sa.String(32), nullable=False, server_default="state_change"),
)

# -- ground truth (migration 0011) ----------------------------------------------------------------

# One label per (endpoint, inference id, row): a later label for the same key replaces the
# earlier one. The prediction it labels (variant, model version, outputs, time) is copied from
# the captured row when the label arrives, so quality needs no capture read and outlives it.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("inference_id", sa.String(128), primary_key=True),
    # The row's index within its request (0 for a one-row request).
    sa.Column("row", sa.Integer, primary_key=True),
    # A JSON scalar (number, string or boolean), as it was sent.
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("variant", sa.String(128), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
    # The captured output: one value, or a list (one per output column); JSON null if none.
    sa.Column("prediction", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_feedback_endpoint_served_at", "endpoint", "served_at"),
)

# -- schedules (migration 0012) -------------------------------------------------------------------

# A command run on a cron schedule: today a batch transform (action "batch", its
# TransformRequest.to_dict() in spec; the output may hold {tick}).
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("cron", sa.String(128), nullable=False),
    # An IANA time zone name; the cron expression is read in it.
    sa.Column("timezone", sa.String(64), nullable=False),
    # What ticks missed while no scheduler ran become: run-once | skip.
    sa.Column("missed", sa.String(16), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Created or last resumed: ticks before it never run.
    sa.Column("active_since", sa.DateTime(timezone=True), nullable=False),
)

# One row per tick a scheduler handled (the lease on the tick chose which scheduler); deleted
# with their schedule. The job it started lives on in the jobs table.
schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schedule", sa.String(128), nullable=False),
    sa.Column("tick", sa.DateTime(timezone=True), nullable=False),
    # submitted | failed | skipped
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("job", sa.String(160), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("missed", sa.Integer, nullable=False),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("schedule", "tick"),
)

# -- deployments (migration 0013) -----------------------------------------------------------------

# A guarded deployment of a new config to an endpoint (services/deployments.py): its plan (JSON
# RolloutPlan), the new config's variants (``target``), and where it stands. Every change is a
# compare-and-set on ``version``. ``active_endpoint`` is the endpoint's name while the
# deployment is RUNNING or PAUSED and NULL after: its unique key allows one active deployment
# per endpoint, however many processes start one at once.
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("endpoint", sa.String(128), nullable=False, index=True),
    sa.Column("active_endpoint", sa.String(128), nullable=True, unique=True),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("source_config", sa.Integer, nullable=False),
    sa.Column("target", sa.JSON, nullable=False),
    sa.Column("served_names", sa.JSON, nullable=False),
    # RUNNING | PAUSED | SUCCEEDED | ROLLED_BACK | STOPPED
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    # The endpoint config it made current last (NULL before its first).
    sa.Column("config", sa.Integer, nullable=True),
    # A change decided but not yet recorded as done (domain Pending), or NULL.
    sa.Column("pending", sa.JSON, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# The steps of a deployment as they happened; the unique key makes each step start once.
deployment_steps = sa.Table(
    "deployment_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "deployment_id",
        sa.Integer,
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("percent", sa.Float, nullable=False),
    sa.Column("config", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.UniqueConstraint("deployment_id", "step"),
)

# The decision log: what each decision did and why, with its checks' values and window.
deployment_decisions = sa.Table(
    "deployment_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "deployment_id",
        sa.Integer,
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
    sa.Column("checks", sa.JSON, nullable=False),
)
