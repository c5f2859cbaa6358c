"""A caller's own request id (SageMaker ``InferenceId``) in captured rows: kept in the
``caller_inference_id`` column beside ours, by both ways calls reach the capture writer (its
own queue, and the metrics' buffer it shares); a file whose rows have none has no such column,
and readers take it as all null.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import Platform, serving_app
from modelyard.domain.capture import CALLER_ID
from modelyard.serving.calls import CallBuffer
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import make_platform, serving

ROWS = np.array([[0.5, 1.5, 7.0], [-1.0, 2.0, 8.0]])
BODY = "0.5,1.5,7.0\n-1.0,2.0,8.0\n"


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    made = make_platform(tmp_path / "home")
    made.close()
    return made


async def _invoke(client: httpx.AsyncClient, caller: str | None) -> str:
    headers = {"content-type": "text/csv", "accept": "application/json"}
    if caller is not None:
        headers["x-amzn-sagemaker-inference-id"] = caller
    answer = await client.post("/endpoints/api/invocations", content=BODY, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-modelyard-inference-id"]


def _files(platform: Platform) -> list[Path]:
    root = platform.settings.home / "artifacts" / "capture" / "api"
    return sorted(root.rglob("*.parquet"))


def _check(platform: Platform, given: dict[str, str | None]) -> None:
    """Every request of ``given`` (our id → the caller's) was captured with the caller's id
    on each of its rows, and null for the requests sent without one."""
    captured = platform.capture.read("api", since=datetime.now(UTC) - timedelta(hours=2))
    assert CALLER_ID in captured.columns
    assert set(captured["inference_id"]) == set(given)
    for ours, caller in given.items():
        mine = captured[captured["inference_id"] == ours]
        assert len(mine) == len(ROWS)
        values = mine[CALLER_ID].tolist()
        if caller is None:
            assert mine[CALLER_ID].isna().all(), values
        else:
            assert values == [caller] * len(ROWS)


@pytest.mark.parametrize("metrics", [True, False], ids=["shared-buffer", "own-queue"])
def test_the_callers_id_is_captured_beside_ours_and_none_is_null(
    platform: Platform, metrics: bool
) -> None:
    settings = platform.settings.model_copy(update={"metrics": metrics})

    async def scenario() -> dict[str, str | None]:
        async with lifespan(serving_app(settings)) as client:
            given: dict[str, str | None] = {}
            for k, caller in enumerate(["order-1", None, "order-2", None, "order-1"]):
                caller = None if caller is None else f"{caller}-{k}"
                given[await _invoke(client, caller)] = caller
            return given

    given = asyncio.run(scenario())
    _check(platform, given)


def test_a_file_of_rows_without_a_callers_id_has_no_such_column(platform: Platform) -> None:
    writer = CaptureWriter(CaptureFolder(platform.settings.resolved_capture_url))

    async def scenario() -> dict[str, str | None]:
        async with serving(platform.settings, writer) as client:
            return {await _invoke(client, None): None for _ in range(3)}

    given = asyncio.run(scenario())
    (file,) = _files(platform)
    assert CALLER_ID not in pq.read_schema(file).names
    assert file.name.endswith(".noids.parquet")  # a lookup by a caller's id skips it unopened
    _check(platform, given)  # read as all null


def test_rows_with_and_without_a_callers_id_share_one_file(platform: Platform) -> None:
    # One long roll: only the shutdown writes, so every call lands in one partition, though
    # they were tabled apart (a flush between them) with and without the column.
    writer = CaptureWriter(CaptureFolder(platform.settings.resolved_capture_url), roll_s=3600)

    async def scenario() -> dict[str, str | None]:
        async with serving(platform.settings, writer) as client:
            given = {await _invoke(client, None): None}
            writer._drain()  # table the first call alone, without the column
            given[await _invoke(client, "abc")] = "abc"
            return given

    given = asyncio.run(scenario())
    files = _files(platform)
    hours = {f.parent for f in files}
    assert len(files) == len(hours), files  # one file an hour, not one per schema
    assert [f.name.endswith(".ids.parquet") for f in files] == [True] * len(files)
    _check(platform, given)


def test_a_refused_inference_id_is_not_captured(platform: Platform) -> None:
    writer = CaptureWriter(CaptureFolder(platform.settings.resolved_capture_url))

    async def scenario() -> httpx.Response:
        async with serving(platform.settings, writer) as client:
            return await client.post(
                "/endpoints/api/invocations",
                content=BODY,
                headers={"content-type": "text/csv", "x-amzn-sagemaker-inference-id": "i" * 65},
            )

    answer = asyncio.run(scenario())
    assert answer.status_code == 400
    assert "InferenceId must be 1 to 64" in answer.json()["message"]
    assert _files(platform) == []


def test_a_callers_id_of_a_call_not_yet_counted_waits_for_the_next_take() -> None:
    calls = CallBuffer(100)
    positions, ids, protocols, starts, latencies = (c.append for c in calls.sparse)

    def sampled(ours: str, caller: str | None) -> None:
        positions(calls.added)
        ids(ours)
        if caller is not None:
            calls.callers.at.append(calls.added)
            calls.callers.values.append(caller)
        protocols("sagemaker")
        starts(0.0)
        latencies(0.0)

    calls.append("v", "api", ROWS, ROWS[:, 0])  # not sampled
    sampled("a", "first")
    calls.append("v", "api", ROWS, ROWS[:, 0])
    sampled("b", None)
    calls.append("v", "api", ROWS, ROWS[:, 0])
    calls.append("v", "api", ROWS, ROWS[:, 0])  # not sampled
    # A call half appended: its capture fields are in, it is not counted yet.
    sampled("c", "third")

    block = calls.take()
    assert block.inference_ids == ["a", "b"]
    assert block.callers == ["first", None]
    calls.append("v", "api", ROWS, ROWS[:, 0])  # now counted
    block = calls.take()
    assert block.inference_ids == ["c"]
    assert block.callers == ["third"]
    sampled("d", None)
    calls.append("v", "api", ROWS, ROWS[:, 0])
    assert calls.take().callers is None  # no caller's id: no list at all


def test_a_window_of_files_with_and_without_the_column_exports_it(
    platform: Platform, tmp_path: Path
) -> None:
    import pandas as pd

    async def session(caller: str | None) -> str:
        writer = CaptureWriter(CaptureFolder(platform.settings.resolved_capture_url))
        async with serving(platform.settings, writer) as client:
            return await _invoke(client, caller)

    before = asyncio.run(session(None))  # a file written as before: no column
    after = asyncio.run(session("label-me"))
    assert sorted(CALLER_ID in pq.read_schema(f).names for f in _files(platform)) == [
        False,
        True,
    ]
    since = datetime.now(UTC) - timedelta(hours=2)
    for suffix in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"rows.{suffix}"
        done = platform.capture.export("api", since, None, out)
        assert (done.rows, done.files) == (4, 2)
        if suffix == "parquet":
            frame = pd.read_parquet(out)
        elif suffix == "csv":
            frame = pd.read_csv(out)
        else:
            frame = pd.read_json(out, lines=True)
        by_id = frame.groupby("inference_id")[CALLER_ID].agg(list).to_dict()
        assert by_id[after] == ["label-me"] * 2, suffix
        assert pd.isna(by_id[before]).all(), suffix


def test_capture_list_counts_each_files_rows_with_a_callers_id(platform: Platform) -> None:
    async def session(callers: list[str | None]) -> None:
        writer = CaptureWriter(CaptureFolder(platform.settings.resolved_capture_url))
        async with serving(platform.settings, writer) as client:
            for caller in callers:
                await _invoke(client, caller)

    asyncio.run(session([None, None]))  # no column in the file
    asyncio.run(session(["x", None, "y"]))
    listed = platform.capture.list("api")
    assert sorted((f.rows, f.caller_ids) for f in listed) == [(4, 0), (6, 4)]
    assert sorted(f.to_dict()["caller_ids"] for f in listed) == [0, 4]
