"""Loading a stored model package: fetch and verify its files, then load them with the runtime
of its flavor. The registry (``RegistryService.load``) and the serving loader share this."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from modelyard.domain import ModelSpec
from modelyard.runtimes import get_runtime
from modelyard.runtimes.base import LoadedModel, SavedModel
from modelyard.storage import packages
from modelyard.storage.base import ArtifactStore


def load_package(
    artifacts: ArtifactStore, spec: ModelSpec, scratch: Path
) -> tuple[LoadedModel, Path, dict[str, Any]]:
    """Materialise ``spec``'s package under ``scratch`` (verifying every file) and load it.

    Returns:
        The loaded model, the package folder (the caller deletes it after unloading), and the
        package manifest.

    Raises:
        ArtifactMissing, ArtifactCorrupted, UnsafeModelFormat, InvalidModelFile. On any error
        the folder is removed.
    """
    folder, manifest = packages.materialize(artifacts, spec.artifact_digest, scratch)
    try:
        saved = SavedModel(
            model_format=spec.model_format,
            trust=spec.trust,
            options=dict(manifest.get("options", {})),
        )
        model = get_runtime(spec.flavor).load(folder / packages.MODEL_DIR, saved)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return model, folder, manifest
