"""Breaking a stored model on purpose: a model that fails to load in a server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def corrupt_model_file(platform: Any, ref: str) -> Callable[[], None]:
    """Overwrite the stored model file of ``ref`` so that its checksum no longer matches;
    returns a function that puts the original bytes back."""
    from modelyard.storage import packages

    version = platform.registry.get_version(ref)
    manifest = packages.read_manifest(platform.artifacts, version.artifact_digest)
    digest = next(f["sha256"] for f in manifest["files"] if f["path"].startswith("model/"))
    blob = Path(platform.settings.resolved_artifact_url) / "sha256" / digest[:2] / digest
    original = blob.read_bytes()
    blob.write_bytes(b"garbage")
    return lambda: blob.write_bytes(original)


def unchecked_endpoints(platform: Any) -> Any:
    """The platform's endpoint service without its load-and-warm check: changes are written
    even for a model that cannot load, as when a blob breaks between the caller's check and a
    server's load (or the server reads another copy of the artifact store)."""
    from modelyard.services.endpoints import EndpointService, PredictorCheck

    return EndpointService(
        platform.endpoint_store,
        resolve=platform.registry.get_version,
        check_model=lambda version, predictor: PredictorCheck("native", "native: not checked"),
    )
