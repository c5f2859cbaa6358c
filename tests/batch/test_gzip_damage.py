"""A truncated or corrupt ``.gz`` input fails the job with an error naming the file, whether the
damage is met while planning (in the first MiB) or later, while a worker reads it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from modelyard.batch.coordinator import run_job
from modelyard.errors import InvalidInput
from tests.batch.support import Model, csv_text, features, request


def _gzipped(rows: np.ndarray) -> bytes:
    return gzip.compress(csv_text(rows), compresslevel=1)


@pytest.mark.parametrize("rows", [200, 120_000], ids=["damage-in-first-mib", "damage-later"])
def test_a_truncated_gzip_input_is_named(model: Model, tmp_path: Path, rows: int) -> None:
    data = _gzipped(features(rows, seed=5))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv.gz").write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(InvalidInput) as raised:
        run_job(request(model, tmp_path / "in", tmp_path / "out"), model.source, job=f"gz{rows}")
    message = raised.value.message
    assert "rows.csv.gz" in message and "truncated or corrupt" in message, message
    assert message.count("rows.csv.gz") == 1, message


def test_a_corrupt_gzip_input_is_named(model: Model, tmp_path: Path) -> None:
    data = bytearray(_gzipped(features(200, seed=6)))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64  # garbage in the deflate stream
    (tmp_path / "bad.csv.gz").write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"bad\.csv\.gz: the gzip file is truncated or corrupt"):
        run_job(request(model, tmp_path / "bad.csv.gz", tmp_path / "out"), model.source, job="c")
