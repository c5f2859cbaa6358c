"""The capture writer's tables of many requests at once: one-row requests (tabled without
repeating anything per row) and multi-row requests together give the rows each gives alone;
a row captured within a microsecond of the hour lands in the hour its stored time names."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import Platform
from modelyard.serving.capture import CaptureRecord
from modelyard.serving.capture_table import build_table
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.capture_support import invoke, make_platform, serving


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("capture-table") / "home")
    made.close()
    return made


class Keeper:
    """A capture sink that keeps what it is offered, for the test to table."""

    def __init__(self) -> None:
        self.records: list[CaptureRecord] = []

    def offer(self, record: CaptureRecord) -> bool:
        self.records.append(record)
        return True

    def open(self) -> None:
        return None

    def close(self, timeout: float = 30.0) -> None:
        return None


def _captured(
    platform: Platform, bodies: list[np.ndarray]
) -> tuple[list[CaptureRecord], list[tuple[str, list[Any]]]]:
    """Send ``bodies`` to endpoint ``api`` (capturing all) at once; the records and answers."""
    keeper = Keeper()

    async def scenario() -> list[tuple[str, list[Any]]]:
        async with serving(platform.settings, keeper) as client:  # type: ignore[arg-type]
            return list(await asyncio.gather(*(invoke(client, "api", b) for b in bodies)))

    answers = asyncio.run(scenario())
    return keeper.records, answers


def test_one_row_and_many_row_requests_table_together_as_each_does_alone(
    platform: Platform,
) -> None:
    rng = np.random.default_rng(3)
    bodies = [rng.normal(size=(n, 3)) for n in (1, 1, 3, 1, 2, 1)]
    records, answers = _captured(platform, bodies)
    assert len(records) == len(bodies)

    mixed = build_table(records)
    one_row = build_table([r for r in records if len(r.rows) == 1])
    assert mixed.equals(pa.concat_tables([build_table([r]) for r in records]))
    assert one_row.equals(pa.concat_tables([build_table([r]) for r in records if len(r.rows) == 1]))
    assert one_row.num_rows == 4 and mixed.num_rows == 9

    frame = mixed.to_pandas()
    for (inference_id, predictions), rows in zip(answers, bodies, strict=True):
        mine = frame[frame["inference_id"] == inference_id]
        assert list(mine["row"]) == list(range(len(rows)))
        assert list(mine["output.prediction"]) == predictions
        assert list(mine["input.a"]) == list(rows[:, 0])
        assert mine["input.b"].isna().all()  # dropped by the endpoint's redaction
        assert len(set(mine["time"])) == 1 and len(set(mine["latency_ms"])) == 1
    micros = {r.meta.inference_id: round(r.time * 1e6) for r in records}
    stored = frame.groupby("inference_id")["time"].first()
    assert {k: int(v.value // 1000) for k, v in stored.items()} == micros


def test_predictions_that_do_not_match_the_rows_are_refused_naming_the_request(
    platform: Platform,
) -> None:
    records, _ = _captured(platform, [np.ones((1, 3)), np.ones((2, 3))])
    first, second = sorted(records, key=lambda r: len(r.rows))
    short = CaptureRecord(
        second.meta, second.variant, second.rows, second.predictions[:1], 0.001, second.time
    )
    with pytest.raises(ValueError, match=second.meta.inference_id):
        build_table([first, short])


def test_a_row_captured_just_before_the_hour_goes_to_the_hour_its_time_names(
    platform: Platform, tmp_path: Path
) -> None:
    records, _ = _captured(platform, [np.ones((1, 3))])
    record = records[0]
    hour = datetime(2026, 1, 31, 8, tzinfo=UTC).timestamp()
    # 0.4 us before 08:00 is stored as 08:00:00.000000; 2 us before stays at 07:59:59.999998.
    times = {"08": hour - 4e-7, "07": hour - 2e-6}
    writer = CaptureWriter(CaptureFolder(str(tmp_path)))
    writer.open()
    for when in times.values():
        rows, predictions = record.rows, record.predictions
        writer.offer(CaptureRecord(record.meta, record.variant, rows, predictions, 0.001, when))
    writer.close()

    files = sorted(tmp_path.rglob("*.parquet"))
    assert {f.parent.name for f in files} == {"hour=07", "hour=08"}
    for file in files:
        stored = pq.read_table(file, columns=["time"])["time"].to_pylist()
        assert [t.strftime("hour=%H") for t in stored] == [file.parent.name]
        assert file.parent.parent.name == "date=2026-01-31"
    assert writer.counters().written_rows == 2


def test_calls_handed_over_stacked_are_split_by_hour_with_their_own_rows(
    platform: Platform, tmp_path: Path
) -> None:
    from modelyard.serving.capture import CaptureBlock
    from modelyard.serving.stacking import prediction_matrix, stacked

    rng = np.random.default_rng(8)
    records, answers = _captured(platform, [rng.normal(size=(n, 3)) for n in (2, 1, 3, 1)])
    block = CaptureBlock.of(records)
    block.matrix = stacked(block.rows)
    block.outputs = prediction_matrix(block.predictions, block.counts)
    block.rows, block.predictions = [], []  # as the metrics drain hands them: stacked only
    hour = round(datetime(2026, 1, 31, 8, tzinfo=UTC).timestamp() * 1e6)
    block.micros = np.array([hour - 5, hour + 5, hour - 1, hour + 1], dtype=np.int64)
    writer = CaptureWriter(CaptureFolder(str(tmp_path)))
    writer.open()
    for rows in block.counts.tolist():
        assert writer.reserve(rows)
    writer.put("api", block)
    writer.close()

    by_hour = {f.parent.name: pq.read_table(f).to_pandas() for f in tmp_path.rglob("*.parquet")}
    assert set(by_hour) == {"hour=07", "hour=08"}
    ids = [r.meta.inference_id for r in records]
    assert set(by_hour["hour=07"]["inference_id"]) == {ids[0], ids[2]}
    assert set(by_hour["hour=08"]["inference_id"]) == {ids[1], ids[3]}
    for record in records:
        frame = by_hour["hour=07" if record.meta.inference_id in (ids[0], ids[2]) else "hour=08"]
        mine = frame[frame["inference_id"] == record.meta.inference_id].sort_values("row")
        assert mine["input.a"].tolist() == record.rows[:, 0].tolist()
        assert mine["output.prediction"].tolist() == record.predictions.tolist()
    counters = writer.counters()
    assert (counters.written_rows, counters.pending_rows, counters.queued_requests) == (7, 0, 4)
    assert len(answers) == 4


def test_a_version_answering_lists_after_numbers_is_read_back_with_every_row(
    platform: Platform, tmp_path: Path
) -> None:
    """Files the writer wrote of one-number answers and of list answers (class
    probabilities) under the same column: read and exported together, each row kept."""
    from modelyard.services.capture import CaptureService

    records, _ = _captured(platform, [np.ones((1, 3)), np.ones((1, 3))])
    hour = datetime(2026, 1, 31, 8, tzinfo=UTC).timestamp()
    lists = np.empty(1, dtype=object)
    lists[0] = [0.25, 0.75]
    writer = CaptureWriter(CaptureFolder(str(tmp_path / "capture")))
    writer.open()
    first, second = records
    writer.offer(
        CaptureRecord(first.meta, first.variant, first.rows, first.predictions, 0.001, hour)
    )
    writer.close()  # a file of its own, as a later version's would be
    writer = CaptureWriter(CaptureFolder(str(tmp_path / "capture")))
    writer.open()
    writer.offer(CaptureRecord(second.meta, second.variant, second.rows, lists, 0.001, hour + 60))
    writer.close()
    assert writer.counters().written_rows == 1

    service = CaptureService(CaptureFolder(str(tmp_path / "capture")))
    since = datetime(2026, 1, 31, 8, tzinfo=UTC)
    rows = service.read("api", since=since, until=since.replace(hour=9))
    assert rows["output.prediction"].tolist() == [str(first.predictions[0]), "[0.25,0.75]"]
    done = service.export("api", since, since.replace(hour=9), tmp_path / "rows.parquet")
    assert done.rows == 2 and pq.read_table(tmp_path / "rows.parquet").num_rows == 2


def test_a_column_arrow_cannot_table_is_refused_without_quoting_its_values(
    platform: Platform,
) -> None:
    # A handler's input_fn may hand the model a table whose column mixes types; the refusal
    # is logged by the writer, and 'b' is a redacted field of this endpoint: its value must
    # not be in the message, as Arrow's own quotes it.
    import pandas as pd

    records, _ = _captured(platform, [np.ones((2, 3))])
    (record,) = records
    rows = pd.DataFrame({"a": [1.0, 2.0], "b": [7, "4111-1111-1111-1111"], "c": [0.0, 1.0]})
    mixed = CaptureRecord(record.meta, record.variant, rows, record.predictions, 0.001, record.time)
    with pytest.raises(ValueError, match="input 'b' holds values of types int, str") as refused:
        build_table([mixed])
    assert "4111" not in str(refused.value)
