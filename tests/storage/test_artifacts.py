"""The content-addressed artifact store: atomic writes, verification on every read."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.errors import ArtifactCorrupted, ArtifactMissing, InvalidInput, StorageNotWritable
from modelyard.storage import packages
from modelyard.storage.artifacts import FsspecArtifactStore

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(params=["path", "file-url", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FsspecArtifactStore:
    if request.param == "path":
        return FsspecArtifactStore(str(tmp_path / "artifacts"))
    if request.param == "file-url":
        return FsspecArtifactStore(f"file://{tmp_path}/artifacts")
    # fsspec's in-memory filesystem stands in for a remote object store.
    return FsspecArtifactStore(f"memory://modelyard-test-{tmp_path.name}")


def blob_path(store: FsspecArtifactStore, digest: str) -> str:
    return store._path(digest)


def test_bytes_round_trip_and_dedup(store: FsspecArtifactStore) -> None:
    digest = store.put_bytes(b"hello model")
    assert digest == hashlib.sha256(b"hello model").hexdigest()
    assert store.put_bytes(b"hello model") == digest
    assert store.get_bytes(digest) == b"hello model"
    assert store.exists(digest)


def test_file_round_trip(store: FsspecArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(3_000_000))
    stored = store.put_file(src)
    assert stored.size == 3_000_000 and stored.path == "weights.bin"
    dest = tmp_path / "copy.bin"
    store.get_file(stored.sha256, dest, size=stored.size)
    assert dest.read_bytes() == src.read_bytes()


def test_no_temporary_names_left(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "a"))
    for i in range(5):
        store.put_bytes(f"blob {i}".encode())
    names = [p.name for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert len(names) == 5 and not [n for n in names if ".tmp-" in n]


def test_tampered_blob_is_refused_with_its_name(store: FsspecArtifactStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"original bytes")
    with store._fs.open(blob_path(store, digest), "wb") as f:
        f.write(b"evil bytes")
    with pytest.raises(ArtifactCorrupted, match=digest):
        store.get_bytes(digest)
    dest = tmp_path / "out"
    with pytest.raises(ArtifactCorrupted, match=digest):
        store.get_file(digest, dest)
    assert not dest.exists(), "a refused blob leaves no local copy"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_truncated_blob_is_refused(store: FsspecArtifactStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"0123456789" * 100)
    with store._fs.open(blob_path(store, digest), "wb") as f:
        f.write(b"0123456789")
    with pytest.raises(ArtifactCorrupted, match="expected 1000"):
        store.get_file(digest, tmp_path / "out", size=1000)


def test_missing_blob(store: FsspecArtifactStore, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(ArtifactMissing, match=digest):
        store.get_bytes(digest)
    with pytest.raises(ArtifactMissing):
        store.get_file(digest, tmp_path / "x")


def test_not_a_digest(store: FsspecArtifactStore) -> None:
    with pytest.raises(InvalidInput):
        store.get_bytes("../../etc/passwd")


def test_package_round_trip_and_tamper(store: FsspecArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "pkg"
    (src / "code").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"weights")
    (src / "code" / "model.py").write_text("x = 1\n")
    stored = packages.upload(store, src, {"flavor": "pyfunc"})
    folder, manifest = packages.materialize(store, stored.digest, tmp_path / "out")
    assert manifest["flavor"] == "pyfunc"
    assert (folder / "code" / "model.py").read_text() == "x = 1\n"
    model_blob = next(f for f in stored.files if f.path == "model.bin")
    with store._fs.open(blob_path(store, model_blob.sha256), "wb") as f:
        f.write(b"weightz")
    with pytest.raises(ArtifactCorrupted, match=model_blob.sha256):
        packages.materialize(store, stored.digest, tmp_path / "out2")
    assert list((tmp_path / "out2").iterdir()) == [], "nothing half-copied is left"


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {done.stderr}")
        pytest.skip(f"mount not permitted here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_a_clear_error_and_leaves_nothing(small_mount: Path) -> None:
    store = FsspecArtifactStore(str(small_mount / "artifacts"))
    with pytest.raises(StorageNotWritable, match="No space left"):
        store.put_bytes(os.urandom(200_000))
    leftovers = [p for p in small_mount.rglob("*") if p.is_file()]
    assert leftovers == []


def test_read_only_store_is_a_clear_error(small_mount: Path) -> None:
    store = FsspecArtifactStore(str(small_mount / "artifacts"))
    store.put_bytes(b"first")
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    with pytest.raises(StorageNotWritable, match="Read-only"):
        store.put_bytes(b"second")
    assert store.get_bytes(hashlib.sha256(b"first").hexdigest()) == b"first"
