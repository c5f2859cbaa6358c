"""Capture in the serving app bootstrap builds: what a request records, where, redacted how;
written at shutdown; and a destination that fails (not a folder, a full disk) costs captured
rows, counted and logged once, never a request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelyard.bootstrap import Platform, serving_app
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource
from tests.cli.conftest import _tmpfs
from tests.serving.asgi_support import lifespan
from tests.serving.capture_support import invoke, make_platform, serving
from tests.waiting import DEADLINE_S


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("capture-app") / "home")
    made.close()
    return made


def test_a_captured_request_is_written_at_shutdown_under_the_artifact_store(
    platform: Platform,
) -> None:
    settings = platform.settings
    rows = np.array([[0.5, 1.5, 123456789.0], [-1.0, 2.0, 987654321.0], [3.0, -2.0, 123456789.0]])

    async def scenario() -> list[tuple[str, list[Any]]]:
        # The default roll is a minute: only the shutdown can have written these rows.
        async with lifespan(serving_app(settings)) as client:
            return [await invoke(client, "api", rows) for _ in range(4)]

    answers = asyncio.run(scenario())
    root = settings.home / "artifacts" / "capture"
    files = sorted(root.rglob("*.parquet"))
    assert files, f"nothing under {root}"
    captured = platform.capture.read("api", since=datetime.now(UTC) - timedelta(hours=2))
    for file in files:
        relative = file.relative_to(root).as_posix()
        found = re.fullmatch(
            r"api/date=(\d{4}-\d\d-\d\d)/hour=(\d\d)/part-[^/]+\.parquet", relative
        )
        assert found, relative
        times = pq.read_table(file, columns=["time"])["time"].to_pylist()
        assert {(t.strftime("%Y-%m-%d"), t.strftime("%H")) for t in times} == {found.groups()}
    assert len(captured) == 12
    engine = make_engine(settings.resolved_db_url)
    try:
        secret = SqlPlanSource(engine).load_plan().endpoints["api"].capture_salt.encode()
    finally:
        engine.dispose()
    assert len(secret) == 32
    ssn = [float(v) for v in rows[:, 2]]
    for inference_id, predictions in answers:
        mine = captured[captured["inference_id"] == inference_id].sort_values("row")
        assert list(mine["row"]) == [0, 1, 2]
        assert list(mine["output.prediction"]) == predictions
        assert list(mine["input.a"]) == list(rows[:, 0])
        assert mine["input.b"].isna().all()  # dropped
        hashed = [hashlib.sha256(secret + b"\x1f" + str(v).encode()).hexdigest() for v in ssn]
        assert list(mine["input.ssn"]) == hashed  # salted: not the plain hash of the number
        assert hashed[0] == hashed[2] != hashed[1]
    assert set(captured["variant"]) == {"main"} and set(captured["model"]) == {"churn"}
    assert set(captured["model_version"]) == {1} and set(captured["protocol"]) == {"sagemaker"}
    assert (captured["latency_ms"] > 0).all()


def _write_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("capture: ")]


def test_a_root_that_is_not_a_folder_loses_captures_but_never_a_request(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture root should be")
    writer = CaptureWriter(CaptureFolder(str(blocker / "capture")), roll_s=0.0, flush_s=0.02)

    async def scenario() -> None:
        async with serving(platform.settings, writer) as client:
            for _ in range(3):
                for _ in range(4):
                    await invoke(client, "api", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
                assert await asyncio.to_thread(writer.flush, DEADLINE_S)
            blocker.unlink()  # the folder can be made now: writes work again
            await invoke(client, "api", [[1.0, 2.0, 3.0]])
            assert await asyncio.to_thread(writer.flush, DEADLINE_S)

    with caplog.at_level(logging.WARNING, logger="modelyard.serving.capture"):
        asyncio.run(scenario())
    counters = writer.counters()
    assert counters.failed_writes >= 3 and counters.failed_rows == 24
    assert counters.written_rows == 1
    failures = _write_failures(caplog)
    assert len(failures) == 1, failures  # once per streak, whatever the number of failures
    assert "not-a-folder" in failures[0]
    assert any("work again" in r.getMessage() for r in caplog.records)


def test_a_full_disk_is_counted_and_serving_goes_on(
    platform: Platform, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _tmpfs(tmp_path / "small", "size=256k") as mounted:
        filler = mounted / "filler"
        with pytest.raises(OSError), filler.open("wb") as out:
            while True:
                out.write(b"\0" * 65536)  # until the disk is full
        writer = CaptureWriter(CaptureFolder(str(mounted / "capture")), roll_s=0.0, flush_s=0.02)
        frame = pd.DataFrame(np.random.default_rng(3).normal(size=(200, 3)))

        async def scenario() -> None:
            async with serving(platform.settings, writer) as client:
                for _ in range(5):
                    await invoke(client, "api", frame.to_numpy())
                assert await asyncio.to_thread(writer.flush, DEADLINE_S)
                assert writer.failed_rows == 1000
                filler.unlink()
                await invoke(client, "api", frame.to_numpy())
                assert await asyncio.to_thread(writer.flush, DEADLINE_S)

        with caplog.at_level(logging.WARNING, logger="modelyard.serving.capture"):
            asyncio.run(scenario())
        assert writer.written_rows == 200
        assert [f.name for f in (mounted / "capture").rglob("*") if f.name.startswith(".")] == []
    failures = _write_failures(caplog)
    assert len(failures) == 1 and "No space left on device" in failures[0], failures
