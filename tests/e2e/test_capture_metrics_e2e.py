"""Capture counts in ``GET /metrics`` of a real ``modelyard serve --workers 2``: whichever worker
answers, every row both workers were sent is counted once, captured or dropped (requests of
more rows than the capture queue holds are always dropped), and every captured row is counted
failed, as the capture root is a file; the failure is also in the server's log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.bootstrap import Platform
from modelyard.domain import CaptureConfig
from tests.e2e.conftest import Server
from tests.e2e.metrics_load import scrape, send
from tests.serving.metrics_support import value
from tests.waiting import wait_for

ROWS = "modelyard_capture_rows_total"
REQUESTS = 60


def test_two_workers_count_dropped_and_failed_capture_rows(
    platform: Platform, serve: Callable[..., Server], models: dict[str, Any], tmp_path: Path
) -> None:
    platform.endpoints.create(
        "churn-api", {"main": "churn:2"}, capture={"main": CaptureConfig.parse(100)}
    )
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture root should be")
    server = serve(
        workers=2,
        MODELYARD_CAPTURE_URL=str(blocker / "capture"),
        MODELYARD_CAPTURE_QUEUE_ROWS="2",
        MODELYARD_CAPTURE_ROLL_S="0.05",
    )
    rng = np.random.default_rng(9)
    pool = [models["x"][rng.integers(0, 3000, size=n)] for n in rng.integers(1, 4, size=2000)]
    sent = send(server, pool, REQUESTS)
    rows = sum(len(r) for r in sent.rows)
    too_big = sum(len(r) for r in sent.rows if len(r) > 2)
    assert too_big, "no request of 3 rows was sent"

    def counts() -> dict[str, float]:
        _, samples = scrape(server)
        found = {o: value(samples, ROWS, outcome=o) for o in ("captured", "dropped", "failed")}
        return {
            **found,
            "written": value(samples, ROWS, outcome="written"),
            "queue": value(samples, "modelyard_capture_queue_rows"),
        }

    seen = wait_for(
        "every row both workers were sent counted captured or dropped, each captured one failed",
        counts,
        lambda c: (
            c["captured"] + c["dropped"] == rows and c["failed"] == c["captured"] and not c["queue"]
        ),
    )
    assert seen["dropped"] >= too_big and seen["captured"] >= 1
    assert seen["written"] == 0
    assert "capture: could not write" in server.log.read_text()
