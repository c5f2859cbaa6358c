"""Derived artifacts (``put_derived`` / ``get_derived``): bytes kept beside a source blob under a
kind, found again by (source, kind), verified on every read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelyard.errors import ArtifactCorrupted, InvalidInput
from modelyard.storage.artifacts import FsspecArtifactStore

SOURCE = hashlib.sha256(b"a model package").hexdigest()
KIND = "onnx-trees-onnxruntime1.0_xgboost3.2+cpu"


@pytest.fixture(params=["path", "file-url", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FsspecArtifactStore:
    if request.param == "path":
        return FsspecArtifactStore(str(tmp_path / "artifacts"))
    if request.param == "file-url":
        return FsspecArtifactStore(f"file://{tmp_path}/artifacts")
    # fsspec's in-memory filesystem stands in for a remote object store.
    return FsspecArtifactStore(f"memory://modelyard-derived-{tmp_path.name}")


def test_round_trip(store: FsspecArtifactStore) -> None:
    digest = store.put_derived(SOURCE, KIND, b"compiled graph")
    assert digest == hashlib.sha256(b"compiled graph").hexdigest()
    assert store.get_derived(SOURCE, KIND) == b"compiled graph"
    assert store.get_bytes(digest) == b"compiled graph"  # a blob like any other


def test_source_need_not_be_stored_and_kinds_are_separate(store: FsspecArtifactStore) -> None:
    store.put_derived(SOURCE, "graph", b"one")
    store.put_derived(SOURCE, "graph.verdict", b"two")
    other = hashlib.sha256(b"another package").hexdigest()
    store.put_derived(other, "graph", b"three")
    assert not store.exists(SOURCE)
    assert store.get_derived(SOURCE, "graph") == b"one"
    assert store.get_derived(SOURCE, "graph.verdict") == b"two"
    assert store.get_derived(other, "graph") == b"three"


def test_overwrite_keeps_the_last(store: FsspecArtifactStore) -> None:
    store.put_derived(SOURCE, KIND, b"first")
    store.put_derived(SOURCE, KIND, b"second")
    assert store.get_derived(SOURCE, KIND) == b"second"


def test_empty_bytes_are_stored(store: FsspecArtifactStore) -> None:
    store.put_derived(SOURCE, KIND, b"")
    assert store.get_derived(SOURCE, KIND) == b""


def test_unknown_pair_is_none(store: FsspecArtifactStore) -> None:
    assert store.get_derived(SOURCE, KIND) is None
    store.put_derived(SOURCE, KIND, b"x")
    assert store.get_derived(SOURCE, "another-kind") is None
    assert store.get_derived(hashlib.sha256(b"other").hexdigest(), KIND) is None


@pytest.mark.parametrize(
    "kind", ["../x", "", ".hidden", "a/b", "x" * 201, "with space", "-leading-dash"]
)
def test_invalid_kind(store: FsspecArtifactStore, kind: str) -> None:
    with pytest.raises(InvalidInput, match="kind"):
        store.put_derived(SOURCE, kind, b"x")
    with pytest.raises(InvalidInput, match="kind"):
        store.get_derived(SOURCE, kind)


def test_longest_kind_is_accepted(store: FsspecArtifactStore) -> None:
    kind = "k" * 200
    store.put_derived(SOURCE, kind, b"x")
    assert store.get_derived(SOURCE, kind) == b"x"


@pytest.mark.parametrize(
    "source", ["../../etc/passwd", SOURCE.upper(), SOURCE[:-1], SOURCE + "0", "", "sha256:abc"]
)
def test_invalid_source_digest(store: FsspecArtifactStore, source: str) -> None:
    with pytest.raises(InvalidInput, match="digest"):
        store.put_derived(source, KIND, b"x")
    with pytest.raises(InvalidInput, match="digest"):
        store.get_derived(source, KIND)


def _pointer(tmp_path: Path) -> Path:
    """The pointer file of (SOURCE, KIND) in a local store (the documented layout)."""
    return tmp_path / "artifacts" / "derived" / SOURCE[:2] / SOURCE / KIND


@pytest.fixture
def local(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "artifacts"))


def test_pointer_names_the_blob(local: FsspecArtifactStore, tmp_path: Path) -> None:
    digest = local.put_derived(SOURCE, KIND, b"graph")
    assert _pointer(tmp_path).read_text() == digest
    names = [p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert not [n for n in names if ".tmp-" in n], "no temporary names left"


@pytest.mark.parametrize("content", [b"", b"not a digest", b"\xff\xfe" * 40])
def test_corrupted_pointer(local: FsspecArtifactStore, tmp_path: Path, content: bytes) -> None:
    local.put_derived(SOURCE, KIND, b"graph")
    _pointer(tmp_path).write_bytes(content)
    with pytest.raises(ArtifactCorrupted, match="pointer"):
        local.get_derived(SOURCE, KIND)


def test_pointer_with_a_digest_and_more_is_corrupted(
    local: FsspecArtifactStore, tmp_path: Path
) -> None:
    digest = local.put_derived(SOURCE, KIND, b"graph")
    _pointer(tmp_path).write_text(digest + "trailing")
    with pytest.raises(ArtifactCorrupted, match="pointer"):
        local.get_derived(SOURCE, KIND)


def test_corrupted_blob(local: FsspecArtifactStore, tmp_path: Path) -> None:
    digest = local.put_derived(SOURCE, KIND, b"graph")
    (tmp_path / "artifacts" / "sha256" / digest[:2] / digest).write_bytes(b"grape")
    with pytest.raises(ArtifactCorrupted, match=digest):
        local.get_derived(SOURCE, KIND)


def test_pointer_to_a_missing_blob_is_none(local: FsspecArtifactStore, tmp_path: Path) -> None:
    digest = local.put_derived(SOURCE, KIND, b"graph")
    (tmp_path / "artifacts" / "sha256" / digest[:2] / digest).unlink()
    assert local.get_derived(SOURCE, KIND) is None
    local.put_derived(SOURCE, KIND, b"graph")  # derived again: found again
    assert local.get_derived(SOURCE, KIND) == b"graph"
