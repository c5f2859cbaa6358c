"""``SqlMetadataStore``: the metadata store on SQLite or PostgreSQL (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import import_module
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from modelyard.domain import (
    Model,
    ModelRef,
    ModelVersion,
    Signature,
    Source,
    Trust,
    VersionStatus,
)
from modelyard.domain.registry import AliasMove
from modelyard.errors import (
    AliasNotFound,
    AlreadyExists,
    ModelNotFound,
    NotFound,
    VersionNotFound,
    VersionProtected,
)
from modelyard.storage.base import MetadataStore, NewVersion
from modelyard.storage.sql import migrate
from modelyard.storage.sql.engine import safe_url, transaction
from modelyard.storage.sql.tables import (
    aliases,
    endpoints,
    model_tags,
    model_versions,
    models,
    serving_versions,
    version_tags,
)
from modelyard.storage.sql.timestamps import aware, utcnow
from modelyard.storage.sql.upsert import dialect_insert

_Lock = Literal["share", "update"] | None


class SqlMetadataStore(MetadataStore):
    """A :class:`MetadataStore` on any SQLAlchemy engine (SQLite, PostgreSQL).

    Opening it checks the schema (:func:`migrate.ensure_current`): an empty database gets the
    schema, SQLite is upgraded, and an older schema elsewhere is refused until
    :func:`migrate.upgrade` runs.

    Raises:
        SchemaOutdated, SchemaMismatch, DatabaseUnavailable, StorageUnavailable: on opening.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        migrate.ensure_current(engine)

    # -- models -----------------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(sa.select(models).where(models.c.name == name)).first()
        if row is None:
            raise ModelNotFound(f"model {name!r} does not exist")
        return row

    def _build_models(self, conn: Connection, rows: Iterable[Row[Any]]) -> list[Model]:
        rows = list(rows)
        ids = [r.id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        for t in conn.execute(sa.select(model_tags).where(model_tags.c.model_id.in_(ids))):
            tags[t.model_id][t.key] = t.value
        alias_map: dict[int, dict[str, int]] = {i: {} for i in ids}
        q = (
            sa.select(aliases.c.model_id, aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == aliases.c.version_id)
            .where(aliases.c.model_id.in_(ids))
        )
        for a in conn.execute(q):
            alias_map[a.model_id][a.alias] = a.version
        latest = dict(
            conn.execute(
                sa.select(model_versions.c.model_id, sa.func.max(model_versions.c.version))
                .where(model_versions.c.model_id.in_(ids))
                .where(model_versions.c.status == VersionStatus.READY.value)
                .group_by(model_versions.c.model_id)
            ).all()
        )
        return [
            Model(
                name=r.name,
                description=r.description,
                tags=tags[r.id],
                aliases=dict(sorted(alias_map[r.id].items())),
                latest_version=latest.get(r.id),
                created_at=aware(r.created_at),
                updated_at=aware(r.updated_at),
            )
            for r in rows
        ]

    def create_model(
        self, name: str, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Model:
        with transaction(self._engine, write=True) as conn:
            if conn.execute(sa.select(models.c.id).where(models.c.name == name)).first():
                raise AlreadyExists(f"model {name!r} already exists")
            now = utcnow()
            model_id = conn.execute(
                models.insert()
                .values(name=name, description=description, created_at=now, updated_at=now)
                .returning(models.c.id)
            ).scalar_one()
            if tags:
                conn.execute(
                    model_tags.insert(),
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
                )
            return self._build_models(conn, [self._model_row(conn, name)])[0]

    def get_model(self, name: str) -> Model:
        with transaction(self._engine, write=False) as conn:
            return self._build_models(conn, [self._model_row(conn, name)])[0]

    def list_models(self) -> list[Model]:
        with transaction(self._engine, write=False) as conn:
            return self._build_models(conn, conn.execute(sa.select(models).order_by(models.c.name)))

    def update_model(self, name: str, *, description: str | None) -> Model:
        with transaction(self._engine, write=True) as conn:
            row = self._model_row(conn, name)
            conn.execute(
                models.update()
                .where(models.c.id == row.id)
                .values(description=description, updated_at=utcnow())
            )
            return self._build_models(conn, [self._model_row(conn, name)])[0]

    # -- versions ---------------------------------------------------------------------------

    def _build_versions(
        self, conn: Connection, name: str, rows: list[Row[Any]]
    ) -> list[ModelVersion]:
        ids = [r.id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        for t in conn.execute(sa.select(version_tags).where(version_tags.c.version_id.in_(ids))):
            tags[t.version_id][t.key] = t.value
        names: dict[int, list[str]] = {i: [] for i in ids}
        for a in conn.execute(sa.select(aliases).where(aliases.c.version_id.in_(ids))):
            names[a.version_id].append(a.alias)
        return [
            ModelVersion(
                name=name,
                version=r.version,
                flavor=r.flavor,
                model_format=r.model_format,
                status=VersionStatus(r.status),
                artifact_digest=r.artifact_digest,
                size_bytes=r.size_bytes,
                signature=Signature.from_dict(r.signature) if r.signature else None,
                params=dict(r.params),
                metrics=dict(r.metrics),
                tags=tags[r.id],
                aliases=tuple(sorted(names[r.id])),
                description=r.description,
                source=Source(kind=r.source_kind, uri=r.source_uri),
                trust=Trust.from_dict(r.trust),
                created_at=aware(r.created_at),
                extra={"options": dict(r.options)},
            )
            for r in rows
        ]

    def _insert_model_if_missing(self, conn: Connection, name: str) -> None:
        now = utcnow()
        # The dialect module is loaded here, not at import: the connection has loaded its own
        # already, and a read command on SQLite need not import PostgreSQL's (25 ms).
        dialect = import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
        stmt = (
            dialect.insert(models)
            .values(name=name, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        conn.execute(stmt)

    def create_version(self, new: NewVersion) -> ModelVersion:
        with transaction(self._engine, write=True) as conn:
            self._insert_model_if_missing(conn, new.name)
            # The row lock taken by this UPDATE (the write lock on SQLite) serialises
            # concurrent registrations of one model, so numbers are dense and unique.
            model_id, number = conn.execute(
                models.update()
                .where(models.c.name == new.name)
                .values(last_version=models.c.last_version + 1, updated_at=utcnow())
                .returning(models.c.id, models.c.last_version)
            ).one()
            version_id = conn.execute(
                model_versions.insert()
                .values(
                    model_id=model_id,
                    version=number,
                    status=VersionStatus.READY.value,
                    flavor=new.flavor,
                    model_format=new.model_format,
                    artifact_digest=new.artifact_digest,
                    size_bytes=new.size_bytes,
                    signature=new.signature.to_dict() if new.signature else None,
                    params=dict(new.params),
                    metrics=dict(new.metrics),
                    description=new.description,
                    source_kind=new.source.kind,
                    source_uri=new.source.uri,
                    trust=new.trust.to_dict(),
                    options=dict(new.options),
                    created_at=utcnow(),
                )
                .returning(model_versions.c.id)
            ).scalar_one()
            if new.tags:
                conn.execute(
                    version_tags.insert(),
                    [{"version_id": version_id, "key": k, "value": v} for k, v in new.tags.items()],
                )
            for alias in new.aliases:
                _point_alias(conn, model_id, alias, version_id)
            return self._version(conn, new.name, number)

    def _version_row(
        self, conn: Connection, name: str, version: int, *, lock: _Lock = None
    ) -> Row[Any]:
        """The version's row; ``lock`` takes its row lock (PostgreSQL): ``share`` for a writer
        pointing something at it (as its foreign key will), ``update`` for one deleting it.
        A writer waiting for the other's lock then sees what it committed."""
        model = self._model_row(conn, name)
        query = sa.select(model_versions).where(
            model_versions.c.model_id == model.id, model_versions.c.version == version
        )
        if lock is not None:
            query = query.with_for_update(read=lock == "share", key_share=lock == "share")
        row = conn.execute(query).first()
        if row is None:
            raise VersionNotFound(f"model {name!r} has no version {version}")
        return row

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        return self._build_versions(conn, name, [self._version_row(conn, name, version)])[0]

    def get_version(self, ref: ModelRef) -> ModelVersion:
        with transaction(self._engine, write=False) as conn:
            return self._version(conn, ref.name, self._resolve_number(conn, ref))

    def _resolve_number(self, conn: Connection, ref: ModelRef) -> int:
        model = self._model_row(conn, ref.name)
        if ref.version is not None:
            return ref.version
        if ref.alias is not None:
            number = conn.execute(
                sa.select(model_versions.c.version)
                .join(aliases, aliases.c.version_id == model_versions.c.id)
                .where(aliases.c.model_id == model.id, aliases.c.alias == ref.alias)
            ).scalar()
            if number is None:
                raise AliasNotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
            return int(number)
        number = conn.execute(
            sa.select(sa.func.max(model_versions.c.version)).where(
                model_versions.c.model_id == model.id,
                model_versions.c.status == VersionStatus.READY.value,
            )
        ).scalar()
        if number is None:
            raise VersionNotFound(f"model {ref.name!r} has no ready version")
        return int(number)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with transaction(self._engine, write=False) as conn:
            model = self._model_row(conn, name)
            rows = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.model_id == model.id)
                .order_by(model_versions.c.version)
            ).all()
            return self._build_versions(conn, name, list(rows))

    # -- aliases, tags, status --------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> AliasMove:
        with transaction(self._engine, write=True) as conn:
            row = self._version_row(conn, name, version, lock="share")
            if row.status == VersionStatus.ARCHIVED.value:  # archived since the caller looked
                raise VersionProtected(
                    f"{name}:{version} is archived; restore it before aliasing it"
                )
            replaced = _point_alias(conn, row.model_id, alias, row.id)
            number = None
            if replaced is not None:
                number = conn.execute(
                    sa.select(model_versions.c.version).where(model_versions.c.id == replaced)
                ).scalar_one()
            return AliasMove(self._version(conn, name, version), number)

    def delete_alias(self, name: str, alias: str) -> None:
        with transaction(self._engine, write=True) as conn:
            model = self._model_row(conn, name)
            gone = conn.execute(
                aliases.delete().where(aliases.c.model_id == model.id, aliases.c.alias == alias)
            ).rowcount
            if not gone:
                raise AliasNotFound(f"model {name!r} has no alias {alias!r}")

    def set_tags(
        self,
        name: str,
        version: int | None,
        set_: Mapping[str, str],
        remove: tuple[str, ...] = (),
    ) -> None:
        with transaction(self._engine, write=True) as conn:
            if version is None:
                table, owner_col, owner = (
                    model_tags,
                    model_tags.c.model_id,
                    self._model_row(conn, name).id,
                )
            else:
                table, owner_col = version_tags, version_tags.c.version_id
                # Shared, as its tags' foreign key will hold it: a delete of the version under
                # way is waited for, and then the version is not found (not a foreign-key
                # violation naming the store's tables).
                owner = self._version_row(conn, name, version, lock="share").id
            where = f"model {name!r}" if version is None else f"version {name}:{version}"
            for key in remove:
                if not conn.execute(
                    table.delete().where(owner_col == owner, table.c.key == key)
                ).rowcount:
                    raise NotFound(f"{where} has no tag {key!r}")
            # One upsert a tag: deleting it and inserting it again would clash, on PostgreSQL,
            # with another writer setting the same tag at the same moment (neither sees the
            # other's row); both must succeed, the later value kept.
            insert = dialect_insert(conn)(table)
            for key, value in set_.items():
                conn.execute(
                    insert.values(
                        {owner_col.key: owner, "key": key, "value": value}
                    ).on_conflict_do_update(
                        index_elements=[owner_col.key, "key"], set_={"value": value}
                    )
                )

    def set_status(self, name: str, version: int, status: VersionStatus) -> ModelVersion:
        with transaction(self._engine, write=True) as conn:
            if status is VersionStatus.ARCHIVED:
                # As a delete: waits for writers pointing an alias or an endpoint at it, and
                # refuses it as held if one did (checked before, it could have changed since).
                row = self._version_row(conn, name, version, lock="update")
                self._refuse_held(conn, name, version, row.id, "archive")
            else:
                row = self._version_row(conn, name, version)
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == row.id)
                .values(status=status.value)
            )
            return self._version(conn, name, version)

    def delete_version(self, name: str, version: int) -> None:
        with transaction(self._engine, write=True) as conn:
            # Waits for writers pointing an alias or an endpoint at the version (their foreign
            # keys hold its row), so the checks below see what they wrote: refused as it would
            # be a moment later, not left to fail on the foreign key.
            row = self._version_row(conn, name, version, lock="update")
            self._refuse_held(conn, name, version, row.id, "delete")
            conn.execute(model_versions.delete().where(model_versions.c.id == row.id))

    @staticmethod
    def _refuse_held(conn: Connection, name: str, version: int, version_id: int, verb: str) -> None:
        """Refuse to ``verb`` a version an alias points at or an endpoint serves."""
        held = (
            conn.execute(sa.select(aliases.c.alias).where(aliases.c.version_id == version_id))
            .scalars()
            .all()
        )
        if held:
            raise VersionProtected(
                f"cannot {verb} {name}:{version}: it is aliased as {', '.join(sorted(held))}; "
                "move or remove the alias first"
            )
        served = (
            conn.execute(
                sa.select(endpoints.c.name)
                .join(serving_versions, serving_versions.c.endpoint_id == endpoints.c.id)
                .where(serving_versions.c.version_id == version_id)
                .order_by(endpoints.c.name)
                .distinct()
            )
            .scalars()
            .all()
        )
        if served:
            raise VersionProtected(
                f"cannot {verb} {name}:{version}: it is served by endpoint {', '.join(served)}; "
                "point the endpoint at another version first"
            )

    # -- store ------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with transaction(self._engine, write=False) as conn:
            counts = {
                "models": conn.execute(sa.select(sa.func.count()).select_from(models)).scalar_one(),
                "versions": conn.execute(
                    sa.select(sa.func.count()).select_from(model_versions)
                ).scalar_one(),
            }
        return {
            "url": safe_url(self._engine.url),
            "backend": self._engine.dialect.name,
            "schema_revision": migrate.current_revision(self._engine),
            "schema_head": migrate.head_revision(),
            **counts,
        }

    def close(self) -> None:
        self._engine.dispose()


def _point_alias(conn: Connection, model_id: int, alias: str, version_id: int) -> int | None:
    """Point (or move) ``alias`` at a version; returns the version row it pointed at as this
    write replaced it (None: it was new).

    The alias row is locked as it is read (PostgreSQL: a move under way elsewhere is waited
    for, and its version is the one replaced). A new alias is inserted only if no other writer
    inserted it meanwhile (neither sees the other's uncommitted row): then the insert waits
    for theirs, does nothing, and the row they made is read and moved, so both writers
    succeed, the later winning, and the later one names the earlier one's version."""
    values = {"version_id": version_id, "updated_at": utcnow()}
    this = (aliases.c.model_id == model_id) & (aliases.c.alias == alias)
    while True:
        found = conn.execute(sa.select(aliases.c.version_id).where(this).with_for_update()).first()
        if found is not None:
            conn.execute(aliases.update().where(this).values(**values))
            return int(found.version_id)
        insert = dialect_insert(conn)(aliases).values(model_id=model_id, alias=alias, **values)
        made = conn.execute(
            insert.on_conflict_do_nothing(index_elements=["model_id", "alias"]).returning(
                aliases.c.model_id
            )
        ).first()
        if made is not None:
            return None
