"""``SqlPlanSource``: builds the data plane's DeploymentPlan from the metadata database."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelyard.domain import (
    DeploymentPlan,
    EndpointPlan,
    ModelSpec,
    Signature,
    Trust,
    Variant,
    VariantPlan,
)
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import (
    deployment_state,
    endpoint_configs,
    endpoints,
    model_versions,
    models,
)

_REVISION = sa.select(deployment_state.c.revision).where(deployment_state.c.id == 1)


class SqlPlanSource:
    """A :class:`~modelyard.domain.PlanSource` over an already-migrated database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def revision(self) -> int:
        with transaction(self._engine, write=False) as conn:
            return int(conn.execute(_REVISION).scalar_one())

    def load_plan(self) -> DeploymentPlan:
        # One read transaction: the revision and the configs are a consistent snapshot.
        with transaction(self._engine, write=False) as conn:
            revision = int(conn.execute(_REVISION).scalar_one())
            rows = conn.execute(
                sa.select(
                    endpoints.c.name,
                    endpoints.c.capture_salt,
                    endpoint_configs.c.number,
                    endpoint_configs.c.variants,
                )
                .join(
                    endpoint_configs,
                    sa.and_(
                        endpoint_configs.c.endpoint_id == endpoints.c.id,
                        endpoint_configs.c.number == endpoints.c.current_config,
                    ),
                )
                .order_by(endpoints.c.name)
            ).all()
            specs: dict[tuple[str, int], ModelSpec] = {}
            plans = {}
            for row in rows:
                variants = []
                for raw in row.variants:
                    variant = Variant.from_dict(raw)
                    key = (variant.model, variant.version)
                    if key not in specs:
                        specs[key] = self._spec(conn, *key)
                    variants.append(
                        VariantPlan(
                            name=variant.name,
                            model=replace(specs[key], predictor=variant.predictor),
                            weight=variant.weight,
                            batching=variant.batching,
                            capture=variant.capture,
                            shadow=variant.shadow,
                        )
                    )
                plans[row.name] = EndpointPlan(
                    row.name, row.number, tuple(variants), capture_salt=row.capture_salt or ""
                )
        return DeploymentPlan(revision=revision, endpoints=plans)

    @staticmethod
    def _spec(conn: sa.Connection, name: str, version: int) -> ModelSpec:
        row = conn.execute(
            sa.select(model_versions)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == name, model_versions.c.version == version)
        ).one()  # serving_versions' foreign key keeps served versions from disappearing
        return ModelSpec(
            name=name,
            version=version,
            flavor=row.flavor,
            model_format=row.model_format,
            artifact_digest=row.artifact_digest,
            trust=Trust.from_dict(row.trust),
            options=dict(row.options),
            signature=Signature.from_dict(row.signature) if row.signature else None,
        )
