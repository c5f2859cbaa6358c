"""Bad records never kill a job silently: each goes to ``<name>.errors.jsonl`` with its file,
line and reason, the good ones keep their predictions in order, and ``max_errors`` is the
budget (0: the first bad record fails the job, naming the file and line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from modelyard.batch.coordinator import run_job
from modelyard.domain import Trust
from modelyard.errors import InvalidPayload
from tests.batch.support import NAMES, Model, csv_text, features, register, request

ROWS = features(200, seed=4)
BAD = {40: b"abc,1,2,3,4", 117: b"1,2,3", 150: b'1,2,"3,4,5'}  # row index -> line


def with_bad_lines(header: bool) -> bytes:
    """The rows as CSV (with a header line first, when asked), some rows replaced by bad lines."""
    lines = csv_text(ROWS).splitlines()
    for index, line in BAD.items():
        lines[index] = line
    return b"\n".join(([",".join(NAMES).encode()] if header else []) + lines) + b"\n"


def good_rows() -> np.ndarray:
    return np.delete(ROWS, list(BAD), axis=0)


def test_the_default_budget_fails_at_the_first_bad_row(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(with_bad_lines(header=False))
    with pytest.raises(InvalidPayload, match=r"in\.csv, line 41: .*cannot read 'abc' as a number"):
        run_job(request(model, tmp_path / "in.csv", tmp_path / "out"), model.source, job="b0")
    assert not (tmp_path / "out" / "in.csv.out").exists()
    assert not (tmp_path / "out" / "in.csv.errors.jsonl").exists()


def test_bad_rows_are_reported_and_left_out(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(with_bad_lines(header=True))
    outcome = run_job(
        request(model, tmp_path / "in.csv", tmp_path / "out", max_errors=3),
        model.source,
        job="b3",
        unit_bytes=1500,  # the bad lines land in different units than the first
    )
    assert (tmp_path / "out" / "in.csv.out").read_bytes() == model.csv(good_rows())
    errors = [
        orjson.loads(x)
        for x in (tmp_path / "out" / "in.csv.errors.jsonl").read_bytes().splitlines()
    ]
    assert [(e["file"], e["line"]) for e in errors] == [
        (str(tmp_path / "in.csv"), index + 2)
        for index in BAD  # the header is line 1
    ]
    assert "cannot read 'abc' as a number" in errors[0]["reason"]
    assert "expected 5 features" in errors[1]["reason"]
    assert "quoted field" in errors[2]["reason"]
    counts = outcome.counts
    assert (counts.rows_in, counts.rows_out, counts.rows_failed) == (200, 197, 3)


def test_past_the_budget_the_job_fails_with_the_count(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(with_bad_lines(header=False))
    with pytest.raises(InvalidPayload, match=r"3 bad records, more than max_errors=2"):
        run_job(
            request(model, tmp_path / "in.csv", tmp_path / "out", max_errors=2),
            model.source,
            job="b2",
        )
    assert not (tmp_path / "out" / "in.csv.out").exists()


HANDLER = """
import numpy as np

def input_fn(body, content_type):
    rows = []
    for line in body.decode().splitlines():
        if "boom" in line:
            raise ValueError("boom on purpose")
        rows.append([2 * float(v) for v in line.split(",")])
    return np.array(rows)
"""


def test_a_handler_applies_and_a_failing_record_is_isolated(
    model: Model, tmp_path: Path, platform: object
) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text(HANDLER)
    booster = model.loaded._inner._booster  # the same booster, packaged with a handler
    handled = register(
        platform,
        "batch-handled",
        booster,
        tmp_path / "scratch",
        handler=handler,  # type: ignore[arg-type]
        trust=Trust(user_code=True),
    )
    rows = np.nan_to_num(ROWS[:30])
    lines = csv_text(rows).splitlines()
    lines[7] = b"boom"
    (tmp_path / "in.csv").write_bytes(b"\n".join(lines) + b"\n")
    outcome = run_job(
        request(handled, tmp_path / "in.csv", tmp_path / "out", max_errors=1),
        handled.source,
        job="hd",
    )
    expected = model.csv(2 * np.delete(rows, 7, axis=0))
    assert (tmp_path / "out" / "in.csv.out").read_bytes() == expected
    (error,) = [
        orjson.loads(x)
        for x in (tmp_path / "out" / "in.csv.errors.jsonl").read_bytes().splitlines()
    ]
    assert error["line"] == 8 and "boom on purpose" in error["reason"]
    assert outcome.fast_rows == 0


@pytest.mark.parametrize("join", ["none", "input"])
@pytest.mark.parametrize("strategy", ["multi-record", "single-record"])
def test_a_malformed_line_is_named_by_its_line_in_the_file(
    model: Model, tmp_path: Path, join: str, strategy: str
) -> None:
    # The codec counts lines within the body it is handed (a record alone: line 1); the file's
    # line is the only one a user can find in a million-line file.
    lines = csv_text(ROWS[:5]).splitlines()
    lines[3] = b'1,2,"3,4,5'
    (tmp_path / "in.csv").write_bytes(b"\n".join(lines) + b"\n")
    kwargs = {"join_source": join, "batch_strategy": strategy}
    with pytest.raises(InvalidPayload) as failed:
        run_job(
            request(model, tmp_path / "in.csv", tmp_path / "out", **kwargs),  # type: ignore[arg-type]
            model.source,
            job=f"m0{join}{strategy}",
        )
    assert str(failed.value).startswith(f"{tmp_path / 'in.csv'}, line 4: malformed CSV: ")
    assert "line 1" not in str(failed.value)
    run_job(
        request(model, tmp_path / "in.csv", tmp_path / "out", max_errors=1, **kwargs),  # type: ignore[arg-type]
        model.source,
        job=f"m1{join}{strategy}",
    )
    (error,) = [
        orjson.loads(x)
        for x in (tmp_path / "out" / "in.csv.errors.jsonl").read_bytes().splitlines()
    ]
    assert error["line"] == 4
    assert error["reason"].startswith("malformed CSV: "), error["reason"]
