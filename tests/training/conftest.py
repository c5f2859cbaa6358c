"""Fixtures shared by the training tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import fsspec
import pytest


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh folder on fsspec's in-memory filesystem (``memory://<root>/...``), removed
    after the test."""
    fs = fsspec.filesystem("memory")
    root = f"/modelyard-test-{uuid.uuid4().hex[:8]}"
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)
