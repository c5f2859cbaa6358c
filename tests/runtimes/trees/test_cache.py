"""Conversions and verdicts cached in a real artifact store, keyed by the package digest.

The second ``choose`` of the same package (a new native object, as after a restart) reads the
graph and the verdict instead of converting and verifying again; a refusal is cached as one.
What the cache holds is shown to be used by changing it in the store and seeing ``choose``
follow, not by mocking the converter.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import xgboost as xgb

from modelyard.errors import ArtifactCorrupted
from modelyard.runtimes.trees import choose, select
from modelyard.runtimes.trees.compiled import CompiledTrees
from modelyard.runtimes.xgboost_runtime import XGBoostLoaded
from modelyard.storage.artifacts import FsspecArtifactStore
from tests.runtimes.trees._models import assert_agrees, fresh_rows, sha256, training_data

IN_CI = os.environ.get("CI", "").lower() == "true"
DATA = training_data()


def _package(params: dict[str, object]) -> bytes:
    booster = xgb.train(
        {"max_depth": 3, "nthread": 1, **params},
        xgb.DMatrix(DATA.x, label=DATA.binary),
        num_boost_round=10,
    )
    return bytes(booster.save_raw("ubj"))


@pytest.fixture(scope="module")
def gbtree() -> bytes:
    return _package({"objective": "binary:logistic"})


@pytest.fixture(scope="module")
def dart() -> bytes:
    return _package({"objective": "rank:pairwise"})


def load(raw: bytes) -> XGBoostLoaded:
    """A new native model from the package bytes, as a server loading it."""
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return XGBoostLoaded(booster)


@pytest.fixture
def store(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "artifacts"))


def pointer(tmp_path: Path, digest: str, kind: str) -> Path:
    """Where the store keeps the pointer of a derived artifact (its documented layout)."""
    return tmp_path / "artifacts" / "derived" / digest[:2] / digest / kind


KIND = select._kind()


def test_second_choice_reads_the_cache(
    store: FsspecArtifactStore, gbtree: bytes, tmp_path: Path
) -> None:
    digest = store.put_bytes(gbtree)
    first = choose(load(gbtree), "xgboost", artifacts=store, digest=digest)
    assert (first.kind, first.cached) == ("compiled", False)
    graph = store.get_derived(digest, KIND)
    assert graph is not None and store.get_derived(digest, f"{KIND}.verdict") is not None
    second_native = load(gbtree)
    second = choose(second_native, "xgboost", artifacts=store, digest=digest)
    assert (second.kind, second.reason, second.cached) == (first.kind, first.reason, True)
    assert isinstance(second.model, CompiledTrees) and second.model.native is second_native
    rows = fresh_rows(DATA.x, 1000, seed=31, missing=True)
    assert_agrees(second_native.predict(rows), second.model.predict(rows), classes=False)
    # another package is another key
    other = store.put_bytes(gbtree + b" ")
    assert choose(load(gbtree), "xgboost", artifacts=store, digest=other).cached is False


def test_the_cached_verdict_decides(store: FsspecArtifactStore, gbtree: bytes) -> None:
    digest = store.put_bytes(gbtree)
    assert choose(load(gbtree), "xgboost", artifacts=store, digest=digest).kind == "compiled"
    stored = store.get_derived(digest, f"{KIND}.verdict")
    assert stored is not None
    verdict = json.loads(stored)
    verdict.update(differing=1, max_diff=0.5)
    store.put_derived(digest, f"{KIND}.verdict", json.dumps(verdict).encode())
    again = choose(load(gbtree), "xgboost", artifacts=store, digest=digest)
    assert again.kind == "native" and again.cached is True
    assert again.reason == f"native: 1 of {verdict['rows']:,} predictions differ by up to 0.5"


def test_a_refusal_is_cached(store: FsspecArtifactStore, dart: bytes) -> None:
    digest = store.put_bytes(dart)
    first = choose(load(dart), "xgboost", artifacts=store, digest=digest)
    assert first.kind == "native" and "rank:pairwise" in first.reason
    refused = store.get_derived(digest, f"{KIND}.refused")
    assert refused is not None and first.reason == f"native: {refused.decode()}"
    assert store.get_derived(digest, KIND) is None
    second = choose(load(dart), "xgboost", artifacts=store, digest=digest)
    assert (second.kind, second.reason) == (first.kind, first.reason)
    # the second choice read the refusal: changing it in the store changes the reason
    store.put_derived(digest, f"{KIND}.refused", b"refused, as the store says")
    third = choose(load(dart), "xgboost", artifacts=store, digest=digest)
    assert third.reason == "native: refused, as the store says"


def test_corrupted_pointer(store: FsspecArtifactStore, gbtree: bytes, tmp_path: Path) -> None:
    digest = store.put_bytes(gbtree)
    choose(load(gbtree), "xgboost", artifacts=store, digest=digest)
    pointer(tmp_path, digest, KIND).write_bytes(b"not a digest at all")
    with pytest.raises(ArtifactCorrupted, match=digest):
        store.get_derived(digest, KIND)
    native = load(gbtree)
    choice = choose(native, "xgboost", artifacts=store, digest=digest)  # never raises
    assert (choice.kind, choice.cached) == ("compiled", False), "a damaged entry is a miss"
    rows = fresh_rows(DATA.x, 500, seed=32, missing=True)
    assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)
    assert store.get_derived(digest, KIND) is not None, "converted again and re-cached"


def test_corrupted_blob(store: FsspecArtifactStore, gbtree: bytes, tmp_path: Path) -> None:
    digest = store.put_bytes(gbtree)
    choose(load(gbtree), "xgboost", artifacts=store, digest=digest)
    named = pointer(tmp_path, digest, KIND).read_text()
    blob = tmp_path / "artifacts" / "sha256" / named[:2] / named
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ArtifactCorrupted, match=named):
        store.get_derived(digest, KIND)


def test_pointer_to_a_missing_blob_is_derived_again(
    store: FsspecArtifactStore, gbtree: bytes, tmp_path: Path
) -> None:
    digest = store.put_bytes(gbtree)
    gone = sha256(b"a graph that was never stored")
    where = pointer(tmp_path, digest, KIND)
    where.parent.mkdir(parents=True)
    where.write_text(gone)
    assert store.get_derived(digest, KIND) is None
    first = choose(load(gbtree), "xgboost", artifacts=store, digest=digest)
    assert (first.kind, first.cached) == ("compiled", False)
    assert where.read_text() != gone and store.get_derived(digest, KIND) is not None
    assert choose(load(gbtree), "xgboost", artifacts=store, digest=digest).cached is True


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs for the read-only store test: {done.stderr}")
        pytest.skip(f"mount not permitted here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_read_only_store_still_serves_compiled(
    read_only_mount: Path, gbtree: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    store = FsspecArtifactStore(str(read_only_mount / "artifacts"))
    digest = store.put_bytes(gbtree)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)
    native = load(gbtree)
    with caplog.at_level(logging.WARNING, logger="modelyard.runtimes"):
        choice = choose(native, "xgboost", artifacts=store, digest=digest)
    assert (choice.kind, choice.cached) == ("compiled", False)
    assert "could not cache" in caplog.text and digest in caplog.text
    assert store.get_derived(digest, KIND) is None
    rows = fresh_rows(DATA.x, 500, seed=33, missing=True)
    assert_agrees(native.predict(rows), choice.model.predict(rows), classes=False)
