"""The composition root: Settings → stores → services. The only wiring code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.config import Settings, load_settings
from modelyard.errors import StorageNotWritable
from modelyard.services.registry import RegistryService
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.base import ArtifactStore, MetadataStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.store import SqlMetadataStore


@dataclass
class Platform:
    """Everything one process needs, built from one Settings object."""

    settings: Settings
    metadata: MetadataStore
    artifacts: ArtifactStore
    registry: RegistryService

    def close(self) -> None:
        """Release database connections."""
        self.metadata.close()


def build(settings: Settings | None = None) -> Platform:
    """Open the stores (applying migrations) and wire the services.

    Raises:
        ConfigError, DatabaseUnavailable, StorageNotWritable, SchemaMismatch.
    """
    settings = settings or load_settings()
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageNotWritable(
            f"cannot create MODELYARD_HOME {settings.home}: {exc.strerror}"
        ) from None
    metadata = SqlMetadataStore(
        make_engine(settings.resolved_db_url, busy_timeout_s=settings.db_busy_timeout_s)
    )
    artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    registry = RegistryService(metadata, artifacts, scratch_dir=settings.home / "tmp")
    return Platform(settings=settings, metadata=metadata, artifacts=artifacts, registry=registry)


def open_registry(**overrides: Any) -> RegistryService:
    """The model registry for the configured (or overridden) home and database.

    Args:
        overrides: Settings fields, e.g. ``home=".modelyard"``, ``db_url="postgresql+psycopg://…"``.
    """
    return build(load_settings(**overrides)).registry
