"""The batch half of the demo: a batch transform job over a generated CSV of 100k rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console

from modelyard.demo.registry_story import ALIAS, MODEL, DemoResult, busy
from modelyard.domain.batch import BatchCounts, TransformRequest
from modelyard.services.jobs import failure_of

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform

BATCH_ROWS = 100_000


@dataclass(frozen=True)
class BatchRun:
    """What the demo's batch job did."""

    job: str
    rows: int
    seconds: float
    output: Path

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def write_rows(result: DemoResult, path: Path, rows: int, seed: int) -> Path:
    """A headerless CSV of ``rows`` rows drawn from the validation rows, with a little noise
    (rows as SageMaker's batch transform sends them: features only)."""
    assert result.validation is not None
    source = result.validation.to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    picked = source[rng.integers(0, len(source), rows)]
    picked *= rng.normal(1.0, 0.02, picked.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, picked, delimiter=",", fmt="%.6g")
    return path


def run_batch(platform: Platform, console: Console, result: DemoResult, seed: int) -> BatchRun:
    """Score :data:`BATCH_ROWS` generated rows with ``MODEL@production`` in a batch job."""
    folder = platform.settings.home / "demo"
    with busy(console, f"Writing {BATCH_ROWS:,} rows to score …"):
        rows = write_rows(result, folder / "batch-input" / "rows.csv", BATCH_ROWS, seed)
    request = TransformRequest(
        model=f"{MODEL}@{ALIAS}",
        input=str(rows),
        output=str(folder / "batch-output"),
        overwrite=True,
    )
    with busy(console, f"Batch transform of {BATCH_ROWS:,} rows …"):
        job = platform.batch.submit(request)
        job = platform.jobs.wait(job.name, poll_s=0.2)
    failed = failure_of(job)
    if failed is not None:
        raise failed
    counts = BatchCounts.from_metrics(job.metrics)
    run = BatchRun(
        job.name, counts.rows_out, job.duration_s or 0.0, Path(request.output) / "rows.csv.out"
    )
    console.print(
        f"Batch job {run.job}: {run.rows:,} rows scored in {run.seconds:.1f}s "
        f"({run.rows_per_s:,.0f} rows/s); predictions in {run.output}"
    )
    return run
