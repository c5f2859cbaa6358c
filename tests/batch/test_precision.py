"""A model whose input type is float32 gets the float64 numbers a file spells cast to float32:
values that read back as written pass silently, values that lose precision are counted, and
the job says where the first one is (its counts; the job log line is the service's)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from modelyard.batch.coordinator import transform
from modelyard.batch.precision import float32_losses
from modelyard.bootstrap import Platform
from modelyard.domain.batch import BatchCounts
from tests.batch.support import NAMES, Model, register, request

ROWS = 200


@pytest.fixture(scope="module")
def float32_model(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Model:
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, len(NAMES)))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(int)),
        num_boost_round=3,
    )
    signature = {
        "inputs": [{"name": n, "dtype": "float32"} for n in NAMES],
        "outputs": [{"name": None, "dtype": "float32"}],
    }
    return register(
        platform, "batch-f32", booster, tmp_path_factory.mktemp("scratch"), signature=signature
    )


def _exact_text(rows: np.ndarray) -> bytes:
    """Four decimals: each reads back from its float32 as written."""
    return "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in rows).encode()


@pytest.mark.parametrize(
    ("values", "lost"),
    [
        ([[0.5, 1.2345, -3.25e-3, 123456.7, np.nan, 0.0]], 0),  # read back as written
        ([[float(np.float32(0.1234567891))]], 0),  # a float32 written in full
        ([[float(str(np.float32(0.123456789)))]], 0),  # a float32 in its shortest form
        ([[0.123456789012, 16777217.0, 1e39, 1e-50]], 4),  # more than a float32 holds
    ],
    ids=["short-decimals", "float32-full", "float32-shortest", "lossy"],
)
def test_float32_losses_counts_what_does_not_read_back(values: list, lost: int) -> None:
    count, first = float32_losses(np.asarray(values, dtype=np.float64))
    assert count == lost
    assert first == (0 if lost else -1)


def test_float32_losses_names_the_first_row() -> None:
    rows = np.full((50, 4), 0.25)
    rows[17, 2] = 0.1234567890123
    rows[40, 0] = 2.000000000001
    assert float32_losses(rows) == (2, 17)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "generic"])
def test_csv_job_counts_lossy_values_and_names_the_first(
    float32_model: Model, tmp_path: Path, fast_path: bool
) -> None:
    rng = np.random.default_rng(4)
    rows = np.round(rng.normal(size=(ROWS, len(NAMES))), 4)
    text = _exact_text(rows).splitlines(keepends=True)
    text[120] = b"0.12345678901234," + text[120].split(b",", 1)[1]  # line 121
    text[150] = b"0.5,1.00000000001,2.00000000001," + text[150].split(b",", 3)[3]
    source = tmp_path / "rows.csv"
    source.write_bytes(b"".join(text))
    counts = transform(
        request(float32_model, source, tmp_path / "out", max_payload_mb=0.002),
        float32_model.source,
        job="f32-lossy",
        stop=threading.Event(),
        fast_path=fast_path,
        unit_bytes=2048,
    )
    assert (counts.rows_out, counts.values_rounded) == (ROWS, 3)
    assert counts.first_rounded == f"{source}, line 121"
    assert counts.rounding_note() == (
        "3 values lost precision when cast to float32 (the model's input type); "
        f"first: {source}, line 121"
    )
    assert counts.to_metrics()["batch.values_rounded"] == 3.0
    assert BatchCounts.from_metrics(counts.to_metrics()) == counts


def test_json_job_counts_lossy_values(float32_model: Model, tmp_path: Path) -> None:
    good = [[0.5, 1.25, -2.0, 3.125, 0.75]] * 5
    bad = [0.5, 1.25, -2.0, 3.125, 0.1234567890123]
    lines = [str(r) for r in good[:3]] + [str(bad)] + [str(r) for r in good[3:]]
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(lines) + "\n")
    counts = transform(
        request(float32_model, source, tmp_path / "out"),
        float32_model.source,
        job="f32-json",
        stop=threading.Event(),
    )
    assert (counts.rows_out, counts.values_rounded) == (6, 1)
    assert counts.first_rounded == f"{source}, line 4"


def test_exact_values_pass_silently(float32_model: Model, tmp_path: Path) -> None:
    rows = np.round(np.random.default_rng(5).normal(size=(ROWS, len(NAMES))) * 50, 4)
    source = tmp_path / "rows.csv"
    source.write_bytes(_exact_text(rows))
    counts = transform(
        request(float32_model, source, tmp_path / "out"),
        float32_model.source,
        job="f32-exact",
        stop=threading.Event(),
    )
    assert (counts.rows_out, counts.values_rounded, counts.rounding_note()) == (ROWS, 0, "")


def test_the_job_says_so_once_in_its_log(
    float32_model: Model, platform: Platform, tmp_path: Path
) -> None:
    rows = np.round(np.random.default_rng(6).normal(size=(50, len(NAMES))), 4)
    text = _exact_text(rows).splitlines(keepends=True)
    text[9] = b"0.12345678901234,0.5,0.5,0.5,0.5\n"
    source = tmp_path / "rows.csv"
    source.write_bytes(b"".join(text))
    job = platform.batch.submit(request(float32_model, source, tmp_path / "out"))
    done = platform.jobs.wait(job.name, timeout_s=120)
    assert done.status.value == "Completed", done.failure_reason
    assert BatchCounts.from_metrics(done.metrics).values_rounded == 1
    said = [line for line in platform.jobs.logs(job.name).splitlines() if "precision" in line]
    assert said == [
        "note: 1 value lost precision when cast to float32 (the model's input type); "
        f"first: {source}, line 10"
    ]
