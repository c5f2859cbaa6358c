"""Redaction fails closed: when the captured rows' columns cannot be matched to the feature
names (rows wider or narrower than the signature), a redacted field may sit among them under
a column number, in clear; such rows are never written, and are counted as failed."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import Platform
from modelyard.serving.capture import CaptureRecord
from modelyard.serving.capture_table import build_table
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.capture_support import invoke, make_platform, serving
from tests.waiting import DEADLINE_S

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


def test_a_refused_call_costs_only_its_own_rows_not_its_neighbours(
    captured: CaptureRecord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls of one variant queued together are tabled together; one that cannot be (here,
    refused for redaction) used to take every other call of that flush with it."""
    root = tmp_path / "capture"
    writer = CaptureWriter(CaptureFolder(str(root)), roll_s=0.0, flush_s=60.0)
    writer.open()
    wide = CaptureRecord(
        dataclasses.replace(captured.meta, inference_id="the-wide-one"),
        captured.variant,
        np.array([[0.5, -0.5, SECRET, 1.0]]),
        captured.predictions,
        captured.latency_s,
        captured.time,
    )
    good = [
        CaptureRecord(
            captured.meta,
            captured.variant,
            np.array([[float(i), 1.0, 2.0], [float(i), 3.0, 4.0]]),
            np.array([0, 1]),
            captured.latency_s,
            captured.time,
        )
        for i in range(5)
    ]
    try:
        with caplog.at_level(logging.ERROR, logger="modelyard.serving.capture"):
            for record in [good[0], good[1], wide, good[2], good[3], wide, good[4]]:
                assert writer.offer(record)
            assert writer.flush(DEADLINE_S)
    finally:
        writer.close()
    assert (writer.written_rows, writer.failed_rows) == (10, 2)
    frame = pd.concat(pq.read_table(f).to_pandas() for f in root.rglob("*.parquet"))
    assert sorted(frame["input.a"]) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
    assert SECRET not in set(frame["input.a"]) | set(frame["input.b"].dropna())
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and "the-wide-one" in logged[0], logged


def test_a_variant_whose_every_call_is_refused_costs_a_bounded_number_of_tables(
    captured: CaptureRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retrying halves finds one odd call among thousands in a few tables, but must not table
    each call alone when they all fail (a variant whose rows never fit its redaction)."""
    from modelyard.serving import capture_parts, capture_table

    tried: list[int] = []
    real = capture_table.block_table

    def counted(block: Any) -> Any:
        tried.append(len(block.counts))
        return real(block)

    monkeypatch.setattr(capture_table, "block_table", counted)
    writer = CaptureWriter(CaptureFolder(str(tmp_path / "capture")), roll_s=0.0, flush_s=60.0)
    writer.open()
    wide = _reshaped(captured, np.array([[0.5, -0.5, SECRET, 1.0]]))
    try:
        for _ in range(2000):
            assert writer.offer(wide)
        assert writer.flush(DEADLINE_S)
    finally:
        writer.close()
    assert writer.failed_rows == 2000 and writer.written_rows == 0
    assert 1 < len(tried) <= capture_parts.TABLE_RETRIES + 1


def test_refused_rows_never_hide_a_failing_destination_in_the_log(
    captured: CaptureRecord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows refused for redaction and a destination that fails are two problems, each logged
    once per streak: the refusals (every flush, as long as that endpoint's rows are too wide)
    used to start the one streak, so a full disk or a root gone bad was never logged, and each
    file written afterwards was announced as writes that "work again"."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture root should be")
    writer = CaptureWriter(CaptureFolder(str(blocker / "capture")), roll_s=0.0, flush_s=60.0)
    writer.open()
    wide = _reshaped(captured, np.array([[0.5, -0.5, SECRET, 1.0]]))

    def round_of_both() -> None:
        assert writer.offer(wide) and writer.offer(captured)
        assert writer.flush(DEADLINE_S)

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records]

    try:
        with caplog.at_level(logging.WARNING, logger="modelyard.serving.capture"):
            round_of_both()
            round_of_both()
            errors = [m for m in messages() if m.startswith("capture: ")]
            assert len(errors) == 2, errors  # once each, whatever the number of rounds
            assert any("not written" in m and "'ssn'" in m for m in errors), errors
            assert any("could not write" in m and "not-a-folder" in m for m in errors), errors
            blocker.unlink()  # the root can be made now
            round_of_both()
            assert len([m for m in messages() if "work again" in m]) == 1
            round_of_both()
            round_of_both()
            assert len([m for m in messages() if "work again" in m]) == 1, messages()
            assert len([m for m in messages() if m.startswith("capture: ")]) == 2, messages()
    finally:
        writer.close()
    assert writer.failed_rows == 7 and writer.written_rows == 3 and writer.failed_writes == 2
