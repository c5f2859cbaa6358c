"""The capture queue under load: below its bound no captured request is lost, above it the
requests still succeed and the records they would have made are dropped and counted; sampling
follows each variant's percent.

Requests go through the real serving app (SageMaker route, inference core, predict stack, a
fitted model) on a real store; the writer's destination is a real folder behind a gate, so
the writer can be held inside a write while requests arrive.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelyard.bootstrap import Platform
from modelyard.services.capture import CaptureService
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.storage.capture_files import CaptureFolder
from tests.serving.capture_support import GatedFolder, invoke, make_platform, serving
from tests.waiting import DEADLINE_S, wait_for


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    made = make_platform(tmp_path_factory.mktemp("capture") / "home")
    made.close()  # the tests open their own connections; the settings stay usable
    return made


def _recent(folder: CaptureFolder, endpoint: str) -> set[str]:
    rows = CaptureService(folder).read(endpoint, since=datetime.now(UTC) - timedelta(hours=2))
    return set(rows["inference_id"])


def test_no_record_is_lost_below_the_queue_bound_and_drops_above_it_are_counted(
    platform: Platform, tmp_path: Path
) -> None:
    folder = CaptureFolder(str(tmp_path / "capture"))
    gated = GatedFolder(folder)
    writer = CaptureWriter(gated, max_rows=40, roll_s=0.0, flush_s=0.02)
    rows = np.random.default_rng(1).normal(size=(60, 3))

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        async with serving(platform.settings, writer) as client:
            first, _ = await invoke(client, "api", rows[0])
            # The writer takes that record and is then held inside its write: from here on
            # it drains nothing, and the queue holds what arrives.
            await asyncio.to_thread(gated.waiting.wait, DEADLINE_S)
            assert gated.waiting.is_set()
            fits = await asyncio.gather(*(invoke(client, "api", r) for r in rows[1:41]))
            assert writer.dropped_requests == 0
            over = await asyncio.gather(*(invoke(client, "api", r) for r in rows[41:56]))
            gated.gate.set()
            assert await asyncio.to_thread(writer.flush, DEADLINE_S)
            return [first], [i for i, _ in fits], [i for i, _ in over]

    first, fits, over = asyncio.run(scenario())
    counters = writer.counters()
    assert (counters.queued_requests, counters.queued_rows) == (41, 41)
    assert (counters.dropped_requests, counters.dropped_rows) == (15, 15)
    assert (counters.written_rows, counters.failed_rows, counters.pending_rows) == (41, 0, 0)
    assert _recent(folder, "api") == {*first, *fits}  # every queued request, no dropped one
    assert not _recent(folder, "api") & set(over)


def test_sampling_draws_once_per_request_against_the_variant_percent(
    platform: Platform, tmp_path: Path
) -> None:
    folder = CaptureFolder(str(tmp_path / "capture"))
    writer = CaptureWriter(folder)
    n = 200
    replay = random.Random(7)
    expected = sum(replay.random() * 100 < 25 for _ in range(n))  # "sampled" captures 25 %
    rows = np.random.default_rng(2).normal(size=(n, 3))

    async def scenario() -> tuple[list[str], list[str]]:
        async with serving(platform.settings, writer, draw=random.Random(7).random) as client:
            sampled = [(await invoke(client, "sampled", r))[0] for r in rows]
            quiet = [(await invoke(client, "quiet", r))[0] for r in rows[:50]]
        return sampled, quiet

    sampled, quiet = asyncio.run(scenario())  # leaving writes what the writer holds
    assert writer.queued_requests == expected
    assert 20 <= expected <= 80  # the seed gives a plain sample, not a corner case
    captured = _recent(folder, "sampled")
    assert len(captured) == expected and captured <= set(sampled)
    assert _recent(folder, "quiet") == set()
    assert not any(i in captured for i in quiet)


@pytest.mark.parametrize("where", ["local", "memory"])
def test_rows_become_readable_after_the_roll_interval_without_a_flush(
    platform: Platform, tmp_path: Path, where: str
) -> None:
    # Any fsspec URL is a capture root: memory:// stands for an object store here.
    root = str(tmp_path / "capture") if where == "local" else f"memory://{uuid.uuid4().hex}"
    folder = CaptureFolder(root)
    writer = CaptureWriter(folder, roll_s=0.2, flush_s=0.05)

    async def scenario() -> set[str]:
        async with serving(platform.settings, writer) as client:
            ids = {(await invoke(client, "api", [[1.0, 2.0, 3.0]] * 3))[0] for _ in range(5)}
            # No flush and no shutdown: the writer's own roll makes them readable.
            await asyncio.to_thread(
                wait_for, "every captured request in files", lambda: _recent(folder, "api"),
                lambda found: found == ids,
            )  # fmt: skip
            return ids

    asyncio.run(scenario())
    assert writer.written_rows == 15
