"""``SqlEndpointStore``: endpoints and configs on SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from modelyard.domain import ConfigChange, Endpoint, EndpointConfig, Variant
from modelyard.errors import AlreadyExists, Conflict, EndpointNotFound, NotFound, VersionNotFound
from modelyard.storage.base import EndpointStore
from modelyard.storage.sql.deployment_store import end_with_endpoint
from modelyard.storage.sql.engine import transaction
from modelyard.storage.sql.tables import (
    deployment_state,
    endpoint_configs,
    endpoints,
    model_versions,
    models,
    monitor_schedules,
    serving_versions,
)
from modelyard.storage.sql.timestamps import aware, utcnow


def _config(name: str, row: Row[Any]) -> EndpointConfig:
    return EndpointConfig(
        endpoint=name,
        number=row.number,
        variants=tuple(Variant.from_dict(v) for v in row.variants),
        change=ConfigChange(row.change),
        created_at=aware(row.created_at),
    )


class SqlEndpointStore(EndpointStore):
    """An :class:`EndpointStore` on an engine whose schema is already migrated."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _endpoint_row(self, conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(sa.select(endpoints).where(endpoints.c.name == name)).first()
        if row is None:
            raise EndpointNotFound(f"endpoint {name!r} does not exist")
        return row

    def _config_row(self, conn: Connection, endpoint_id: int, number: int) -> Row[Any] | None:
        return conn.execute(
            sa.select(endpoint_configs).where(
                endpoint_configs.c.endpoint_id == endpoint_id, endpoint_configs.c.number == number
            )
        ).first()

    def _endpoint(self, conn: Connection, row: Row[Any]) -> Endpoint:
        config = self._config_row(conn, row.id, row.current_config)
        assert config is not None, "an endpoint always has its current config"
        return Endpoint(
            name=row.name,
            config=_config(row.name, config),
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )

    def _version_ids(self, conn: Connection, variants: tuple[Variant, ...]) -> dict[str, int]:
        ids = {}
        for v in variants:
            # FOR KEY SHARE (PostgreSQL): a delete of the version by another process waits
            # for this config, or this waits for the delete and finds no version, instead of
            # both checking at once and the loser failing on the foreign key.
            found = conn.execute(
                sa.select(model_versions.c.id)
                .join(models, models.c.id == model_versions.c.model_id)
                .where(models.c.name == v.model, model_versions.c.version == v.version)
                .with_for_update(read=True, key_share=True, of=model_versions)
            ).scalar()
            if found is None:
                raise VersionNotFound(
                    f"variant {v.name!r}: model version {v.model_ref} does not exist"
                )
            ids[v.name] = int(found)
        return ids

    def _bump(self, conn: Connection) -> None:
        conn.execute(
            deployment_state.update()
            .where(deployment_state.c.id == 1)
            .values(revision=deployment_state.c.revision + 1)
        )

    def _make_current(
        self,
        conn: Connection,
        endpoint_id: int,
        number: int,
        variants: tuple[Variant, ...],
        change: ConfigChange,
        parent: int | None,
    ) -> None:
        ids = self._version_ids(conn, variants)
        now = utcnow()
        conn.execute(
            endpoint_configs.insert().values(
                endpoint_id=endpoint_id,
                number=number,
                parent=parent,
                change=change.value,
                variants=[v.to_dict() for v in variants],
                created_at=now,
            )
        )
        conn.execute(
            endpoints.update()
            .where(endpoints.c.id == endpoint_id)
            .values(current_config=number, last_config=number, updated_at=now)
        )
        conn.execute(serving_versions.delete().where(serving_versions.c.endpoint_id == endpoint_id))
        conn.execute(
            serving_versions.insert(),
            [{"endpoint_id": endpoint_id, "variant": k, "version_id": i} for k, i in ids.items()],
        )
        self._bump(conn)

    def create_endpoint(self, name: str, variants: tuple[Variant, ...]) -> Endpoint:
        with transaction(self._engine, write=True) as conn:
            if conn.execute(sa.select(endpoints.c.id).where(endpoints.c.name == name)).first():
                raise AlreadyExists(f"endpoint {name!r} already exists")
            now = utcnow()
            try:
                endpoint_id = conn.execute(
                    endpoints.insert()
                    .values(
                        name=name, current_config=1, last_config=0, created_at=now, updated_at=now
                    )
                    .returning(endpoints.c.id)
                ).scalar_one()
            except sa.exc.IntegrityError:
                # Created by another process since the check above: on PostgreSQL both see
                # the name free, and the second insert waits for the first and hits the
                # unique name (SQLite's write lock makes the check itself enough).
                raise AlreadyExists(f"endpoint {name!r} already exists") from None
            self._make_current(conn, endpoint_id, 1, variants, ConfigChange.CREATE, None)
            return self._endpoint(conn, self._endpoint_row(conn, name))

    def add_config(
        self,
        name: str,
        variants: tuple[Variant, ...],
        change: ConfigChange,
        *,
        expected_current: int,
        parent: int | None,
    ) -> Endpoint:
        with transaction(self._engine, write=True) as conn:
            # Lock the endpoint row (PostgreSQL; SQLite holds the write lock already).
            row = conn.execute(
                sa.select(endpoints).where(endpoints.c.name == name).with_for_update()
            ).first()
            if row is None:
                raise EndpointNotFound(f"endpoint {name!r} does not exist")
            if row.current_config != expected_current:
                raise Conflict(
                    f"endpoint {name!r} changed meanwhile (now at config {row.current_config}, "
                    f"expected {expected_current}); look again and retry"
                )
            self._make_current(conn, row.id, row.last_config + 1, variants, change, parent)
            return self._endpoint(conn, self._endpoint_row(conn, name))

    def get_endpoint(self, name: str) -> Endpoint:
        with transaction(self._engine, write=False) as conn:
            return self._endpoint(conn, self._endpoint_row(conn, name))

    def get_config(self, name: str, number: int) -> tuple[EndpointConfig, int | None]:
        with transaction(self._engine, write=False) as conn:
            row = self._config_row(conn, self._endpoint_row(conn, name).id, number)
            if row is None:
                raise NotFound(f"endpoint {name!r} has no config {number}")
            return _config(name, row), row.parent

    def list_endpoints(self) -> list[Endpoint]:
        with transaction(self._engine, write=False) as conn:
            rows = conn.execute(sa.select(endpoints).order_by(endpoints.c.name)).all()
            return [self._endpoint(conn, r) for r in rows]

    def history(self, name: str) -> list[EndpointConfig]:
        with transaction(self._engine, write=False) as conn:
            endpoint_id = self._endpoint_row(conn, name).id
            rows = conn.execute(
                sa.select(endpoint_configs)
                .where(endpoint_configs.c.endpoint_id == endpoint_id)
                .order_by(endpoint_configs.c.number)
            ).all()
            return [_config(name, r) for r in rows]

    def delete_endpoint(self, name: str) -> None:
        with transaction(self._engine, write=True) as conn:
            endpoint_id = self._endpoint_row(conn, name).id
            end_with_endpoint(conn, name, utcnow())
            # Its drift schedule would fail every tick for good; its runs stay readable.
            conn.execute(monitor_schedules.delete().where(monitor_schedules.c.endpoint == name))
            # Children first: SQLite enforces the cascade only with foreign keys on, and an
            # explicit order keeps both backends identical.
            conn.execute(
                serving_versions.delete().where(serving_versions.c.endpoint_id == endpoint_id)
            )
            conn.execute(
                endpoint_configs.delete().where(endpoint_configs.c.endpoint_id == endpoint_id)
            )
            conn.execute(endpoints.delete().where(endpoints.c.id == endpoint_id))
            self._bump(conn)

    def endpoints_serving(self, model: str, version: int) -> list[str]:
        with transaction(self._engine, write=False) as conn:
            return list(
                conn.execute(
                    sa.select(endpoints.c.name)
                    .join(serving_versions, serving_versions.c.endpoint_id == endpoints.c.id)
                    .join(model_versions, model_versions.c.id == serving_versions.c.version_id)
                    .join(models, models.c.id == model_versions.c.model_id)
                    .where(models.c.name == model, model_versions.c.version == version)
                    .order_by(endpoints.c.name)
                    .distinct()
                ).scalars()
            )

    def revision(self) -> int:
        with transaction(self._engine, write=False) as conn:
            return int(
                conn.execute(
                    sa.select(deployment_state.c.revision).where(deployment_state.c.id == 1)
                ).scalar_one()
            )
