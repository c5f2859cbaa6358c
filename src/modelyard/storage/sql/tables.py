"""Table definitions. The schema itself is created only by the Alembic migrations shipped in
``migrations/``; this module must describe the same tables (a test compares them)."""

from __future__ import annotations

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
