"""Redaction fails closed: when the captured rows' columns cannot be matched to the feature
names (rows wider or narrower than the signature), a redacted field may sit among them under
a column number, in clear; such rows are never written, and are counted as failed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from modelyard.bootstrap import Platform
from modelyard.serving.capture import CaptureRecord
from modelyard.serving.capture_table import build_table
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.capture_support import invoke, make_platform, serving

#: A value no model input holds by chance: found in a file, it was stored in clear.
SECRET = 987654321.125


class Keeper:
    """A capture sink that keeps what it is offered."""

    def __init__(self) -> None:
        self.records: list[CaptureRecord] = []

    def offer(self, record: CaptureRecord) -> bool:
        self.records.append(record)
        return True

    def open(self) -> None:
        return None

    def close(self, timeout: float = 30.0) -> None:
        return None


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("capture-redaction") / "home")
    made.close()
    return made


@pytest.fixture(scope="module")
def captured(platform: Platform) -> CaptureRecord:
    """One real captured call to ``api`` (features a, b, ssn; ssn hashed, b dropped)."""
    keeper = Keeper()

    async def scenario() -> None:
        async with serving(platform.settings, keeper) as client:  # type: ignore[arg-type]
            await invoke(client, "api", [[0.5, -0.5, SECRET]])

    asyncio.run(scenario())
    assert len(keeper.records) == 1
    return keeper.records[0]


def _reshaped(record: CaptureRecord, rows: np.ndarray) -> CaptureRecord:
    return CaptureRecord(
        record.meta, record.variant, rows, record.predictions, record.latency_s, record.time
    )


def test_rows_that_match_the_feature_names_are_redacted(captured: CaptureRecord) -> None:
    frame = build_table([captured]).to_pandas()
    assert frame["input.a"].tolist() == [0.5]
    assert frame["input.b"].isna().all()
    assert frame["input.ssn"].str.fullmatch("[0-9a-f]{64}").all()


@pytest.mark.parametrize("width", [4, 2])
def test_rows_whose_width_does_not_match_the_names_are_refused(
    captured: CaptureRecord, width: int
) -> None:
    rows = np.full((1, width), SECRET)
    with pytest.raises(ValueError, match=r"'ssn'.*not written"):
        build_table([_reshaped(captured, rows)])


def test_the_writer_counts_them_failed_logs_why_and_writes_nothing_in_clear(
    captured: CaptureRecord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "capture"
    writer = CaptureWriter(CaptureFolder(str(root)), roll_s=0.0, flush_s=0.02)
    writer.open()
    wide = _reshaped(captured, np.array([[0.5, -0.5, SECRET, 1.0]]))
    with caplog.at_level(logging.ERROR, logger="modelyard"):
        assert writer.offer(wide)
        writer.close()
    assert writer.failed_rows == 1 and writer.written_rows == 0
    assert "ssn" in caplog.text and "in clear" in caplog.text
    assert not list(root.rglob("*.parquet"))
