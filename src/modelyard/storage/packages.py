"""Model packages: a folder of files stored as blobs plus a manifest blob that lists them.

The manifest's digest identifies the whole package (it is what a model version records), and
every file is verified against the manifest when the package is materialised again.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modelyard.domain import ArtifactFile
from modelyard.errors import ArtifactCorrupted
from modelyard.storage.base import ArtifactStore
from modelyard.storage.tree import list_files

MANIFEST_VERSION = 1
#: The flavor's own files live under this folder of a package.
MODEL_DIR = "model"
#: The first rows of the registration's input example (``DataFrame.to_json(orient="split")``).
EXAMPLE_FILE = "input_example.json"
#: The drift baseline: the profile of the training data and of the model's predictions on it
#: (``monitoring/profile.py``, written by the registry with ``training/baseline.py``).
BASELINE_PROFILE_FILE = "baseline.profile"
#: The 10-bin statistics older versions carry instead (read for their min and max only).
BASELINE_FILE = "baseline.json"


@dataclass(frozen=True, slots=True)
class StoredPackage:
    """The result of :func:`upload`: the manifest digest and the total size of the files."""

    digest: str
    size_bytes: int
    files: tuple[ArtifactFile, ...]


def upload(store: ArtifactStore, folder: Path, meta: dict[str, Any]) -> StoredPackage:
    """Store every file under ``folder`` and a manifest (with ``meta``) listing them.

    Raises:
        InvalidModelFile: ``folder`` holds a symlink or a special file; nothing is stored.
    """
    # Runtimes write this folder, but one that left a link would have us store whatever it
    # points at: refuse every link, and before the first blob is written.
    files = []
    for entry in list_files(folder, links=False):
        stored = store.put_file(entry.source)
        files.append(
            ArtifactFile(path=entry.rel.as_posix(), sha256=stored.sha256, size=stored.size)
        )
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        **meta,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
    }
    digest = store.put_bytes(json.dumps(manifest, sort_keys=True).encode())
    return StoredPackage(digest=digest, size_bytes=sum(f.size for f in files), files=tuple(files))


def read_manifest(store: ArtifactStore, digest: str) -> dict[str, Any]:
    """Fetch and verify a manifest. Raises ArtifactMissing / ArtifactCorrupted."""
    raw = store.get_bytes(digest)
    try:
        manifest: dict[str, Any] = json.loads(raw)
        files = manifest["files"]
        assert isinstance(files, list)
    except (ValueError, KeyError, AssertionError):
        raise ArtifactCorrupted(f"artifact {digest} is not a model package manifest") from None
    return manifest


def materialize(store: ArtifactStore, digest: str, parent: Path) -> tuple[Path, dict[str, Any]]:
    """Copy a package into a new folder under ``parent``, verifying every file.

    Returns:
        The folder and the manifest. On any error nothing is left behind.
    """
    manifest = read_manifest(store, digest)
    parent.mkdir(parents=True, exist_ok=True)
    folder = parent / f"{digest[:12]}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        for entry in manifest["files"]:
            rel = PurePosixPath(entry["path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise ArtifactCorrupted(f"package {digest} lists an unsafe path {entry['path']!r}")
            dest = folder.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(entry["sha256"], dest, size=int(entry["size"]))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, manifest
